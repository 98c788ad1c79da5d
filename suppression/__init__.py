"""The suppression list: address normalisation and hashing, scopes and reasons, append-only
history, the check API, import and export, and the Postfix policy server."""
