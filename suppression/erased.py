"""How an erased address is written over: its spellings in mail and records, and the fixed
placeholder that replaces it (derived from the keyed hash, so it names nobody). Plain Python, no
Django: report code uses it too."""

from __future__ import annotations

import re

PLACEHOLDER_DOMAIN = "erased.invalid"


def placeholder_for(address_hash: bytes) -> str:
    return f"{bytes(address_hash).hex()[:16]}@{PLACEHOLDER_DOMAIN}"


def spellings(address: str) -> list[str]:
    """How `address` appears: plainly, as a VERP local part (`pat=example.com`), URL-encoded."""
    local, _, domain = address.rpartition("@")
    return [address, f"{local}={domain}", f"{local}%40{domain}"]


def pattern(address: str) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(s) for s in spellings(address)), re.IGNORECASE)


def redact_text(text: str, address: str, placeholder: str) -> str:
    return pattern(address).sub(placeholder, text) if text else text
