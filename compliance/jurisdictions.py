"""Which law governs marketing mail to a recipient, by jurisdiction code.

Pure Python. A tenant has a default jurisdiction; a send decision may name another. The regime
decides what a commercial send needs (compliance/consent/decisions.py).
"""

from __future__ import annotations

from typing import Final

OPT_IN_EU: Final = "opt_in_eu"  # GDPR and the ePrivacy Directive: consent or soft opt-in
OPT_IN_UK: Final = "opt_in_uk"  # UK GDPR and PECR: the same
CASL: Final = "casl"  # Canada: express consent, or implied consent for two years
OPT_OUT: Final = "opt_out"  # US CAN-SPAM: mail until the recipient opts out

# EU member states and the other EEA states (Iceland, Liechtenstein, Norway), ISO 3166-1 alpha-2;
# Greece also as EL, the EU's own code for it.
_EEA: Final = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR EL HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE "
    "IS LI NO".split()
)
REGIMES: Final[dict[str, str]] = {
    **dict.fromkeys(_EEA, OPT_IN_EU),
    "EU": OPT_IN_EU,
    "EEA": OPT_IN_EU,
    "GB": OPT_IN_UK,
    "UK": OPT_IN_UK,
    "CA": CASL,
    "US": OPT_OUT,
}
JURISDICTIONS: Final = tuple(sorted(REGIMES))
# Opt-in until the operator says otherwise: without proof of consent, no marketing mail.
DEFAULT: Final = "EU"


class UnknownJurisdiction(ValueError):
    pass


def normalise(code: str) -> str:
    """The code as stored; raises UnknownJurisdiction naming the known ones."""
    wanted = (code or "").strip().upper()
    if wanted not in REGIMES:
        raise UnknownJurisdiction(
            f"unknown jurisdiction {code!r}: use one of {', '.join(JURISDICTIONS)}"
        )
    return wanted


def regime(code: str) -> str:
    return REGIMES[normalise(code)]
