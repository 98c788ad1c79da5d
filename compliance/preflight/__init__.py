"""The pre-send message check (`POST /api/v1/preflight`, `manage.py preflight`, /admin/preflight/):
does a message, as it will be sent, carry what Gmail, Yahoo and CAN-SPAM ask of it? No models."""
