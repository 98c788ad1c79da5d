"""Data-subject requests (GDPR Arts. 15-21): access, erasure, objection, rectification and
restriction, verified before anything is released or erased, answered within their deadline.

The top layer: it reads and writes every other app's data, and nothing imports it."""
