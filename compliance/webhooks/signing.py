"""Standard Webhooks signatures (https://www.standardwebhooks.com), made with the specification's
own library so receivers verify them with any of its implementations."""

from __future__ import annotations

import base64
import datetime
import secrets

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh secret in the specification's format: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_event_id() -> str:
    return "evt_" + secrets.token_urlsafe(18)


class Signer:
    """Signs many bodies with one endpoint's secret (decoded once)."""

    def __init__(self, secret: str):
        self._webhook = Webhook(secret)

    def headers(self, event_id: str, body: str, at: datetime.datetime) -> dict[str, str]:
        """The three headers of one attempt. The timestamp is the attempt's, so a retry a day
        later is still inside the receiver's replay window."""
        stamp = int(at.timestamp())
        moment = datetime.datetime.fromtimestamp(stamp, datetime.UTC)
        return {
            "webhook-id": event_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": self._webhook.sign(event_id, moment, body),
            "content-type": "application/json",
        }
