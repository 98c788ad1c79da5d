"""Inbound reports: ARF complaint and DSN bounce parsing, ingestion, relay events and complaint
rates."""
