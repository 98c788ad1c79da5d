"""The send-decision table (compliance/consent/decisions.py), row by row, without a database."""

from __future__ import annotations

import datetime

import pytest

from compliance import jurisdictions
from compliance.consent import decisions, rules

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
MARKETING = rules.Purpose("marketing")

UNSUBSCRIBED = decisions.Blocking("unsubscribe", "commercial")
HARD_BOUNCE = decisions.Blocking("hard_bounce", "global")
ERASURE = decisions.Blocking("erasure", "global")


def state(action: str, basis: str = rules.CONSENT, *, age: datetime.timedelta = DAY):
    return rules.State(MARKETING, action, basis, NOW - age)


def granted(basis: str = rules.CONSENT, *, age: datetime.timedelta = DAY):
    return state(rules.GRANTED, basis, age=age)


WITHDRAWN = state(rules.WITHDRAWN)
TWO_YEARS = decisions.CASL_IMPLIED_FOR

EU = jurisdictions.regime("DE")
UK = jurisdictions.regime("GB")
CA = jurisdictions.regime("CA")
US = jurisdictions.regime("US")


def decide(*, commercial=True, regime=EU, blocking=None, consent=None):
    denial = decisions.decide(
        commercial=commercial, regime_name=regime, blocking=blocking, consent=consent, now=NOW
    )
    return None if denial is None else (denial.reason, denial.rule)


ALLOWED = None

# (case, arguments, expected (reason, rule) or ALLOWED)
TABLE = [
    # Transactional: only a never-mail entry (the blocking rule passes no other) denies it.
    ("transactional, nothing", dict(commercial=False), ALLOWED),
    ("transactional, no consent in the EU", dict(commercial=False, regime=EU), ALLOWED),
    ("transactional, consent withdrawn", dict(commercial=False, consent=WITHDRAWN), ALLOWED),
    (
        "transactional, hard bounce",
        dict(commercial=False, blocking=HARD_BOUNCE),
        ("suppressed", "transactional_never_mail"),
    ),
    ("transactional, erased", dict(commercial=False, blocking=ERASURE), ("erased", "erased")),
    # Commercial, every jurisdiction: suppressed or withdrawn denies, even with a grant elsewhere.
    *[
        (
            f"commercial {name}, suppressed",
            dict(regime=regime, blocking=UNSUBSCRIBED, consent=granted()),
            ("suppressed", "commercial_suppressed"),
        )
        for name, regime in [("EU", EU), ("UK", UK), ("CA", CA), ("US", US)]
    ],
    *[
        (
            f"commercial {name}, withdrawn",
            dict(regime=regime, consent=WITHDRAWN),
            ("consent_withdrawn", "commercial_withdrawn"),
        )
        for name, regime in [("EU", EU), ("UK", UK), ("CA", CA), ("US", US)]
    ],
    ("commercial, erased", dict(blocking=ERASURE), ("erased", "erased")),
    # EU/EEA (GDPR, ePrivacy Art. 13): consent or soft opt-in, nothing else.
    ("EU, no record", dict(regime=EU), ("no_consent", "opt_in_eu")),
    ("EU, consent", dict(regime=EU, consent=granted()), ALLOWED),
    ("EU, soft opt-in", dict(regime=EU, consent=granted(rules.SOFT_OPT_IN)), ALLOWED),
    (
        "EU, legitimate interest",
        dict(regime=EU, consent=granted(rules.LEGITIMATE_INTEREST)),
        ("no_consent", "opt_in_eu"),
    ),
    (
        "EU, contract",
        dict(regime=EU, consent=granted(rules.CONTRACT)),
        ("no_consent", "opt_in_eu"),
    ),
    # UK (UK GDPR, PECR): the same.
    ("UK, no record", dict(regime=UK), ("no_consent", "opt_in_uk")),
    ("UK, consent", dict(regime=UK, consent=granted()), ALLOWED),
    ("UK, soft opt-in", dict(regime=UK, consent=granted(rules.SOFT_OPT_IN)), ALLOWED),
    (
        "UK, legitimate interest",
        dict(regime=UK, consent=granted(rules.LEGITIMATE_INTEREST)),
        ("no_consent", "opt_in_uk"),
    ),
    # Canada (CASL s. 10): express consent always; implied consent for two years.
    ("CA, no record", dict(regime=CA), ("no_consent", "casl")),
    (
        "CA, express consent years old",
        dict(regime=CA, consent=granted(age=10 * 365 * DAY)),
        ALLOWED,
    ),
    (
        "CA, implied (soft opt-in) under two years",
        dict(regime=CA, consent=granted(rules.SOFT_OPT_IN, age=TWO_YEARS - DAY)),
        ALLOWED,
    ),
    (
        "CA, implied (contract) under two years",
        dict(regime=CA, consent=granted(rules.CONTRACT, age=TWO_YEARS - DAY)),
        ALLOWED,
    ),
    (
        "CA, implied (soft opt-in) over two years",
        dict(regime=CA, consent=granted(rules.SOFT_OPT_IN, age=TWO_YEARS + DAY)),
        ("no_consent", "casl_implied_expired"),
    ),
    (
        "CA, implied (contract) exactly two years",
        dict(regime=CA, consent=granted(rules.CONTRACT, age=TWO_YEARS)),
        ("no_consent", "casl_implied_expired"),
    ),
    (
        "CA, legitimate interest",
        dict(regime=CA, consent=granted(rules.LEGITIMATE_INTEREST)),
        ("no_consent", "casl"),
    ),
    # US (CAN-SPAM): opt-out law, so no record is enough.
    ("US, no record", dict(regime=US), ALLOWED),
    (
        "US, legitimate interest",
        dict(regime=US, consent=granted(rules.LEGITIMATE_INTEREST)),
        ALLOWED,
    ),
    ("US, consent", dict(regime=US, consent=granted()), ALLOWED),
]


@pytest.mark.parametrize(
    ("arguments", "expected"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE]
)
def test_the_decision_table(arguments, expected):
    assert decide(**arguments) == expected


def test_a_denial_for_a_blocking_entry_names_that_entry():
    denial = decisions.decide(
        commercial=True, regime_name=US, blocking=UNSUBSCRIBED, consent=None, now=NOW
    )
    assert denial.blocking == UNSUBSCRIBED


def test_every_jurisdiction_has_a_regime_the_table_knows():
    known = {jurisdictions.OPT_IN_EU, jurisdictions.OPT_IN_UK, jurisdictions.CASL}
    for code in jurisdictions.JURISDICTIONS:
        regime = jurisdictions.regime(code)
        assert regime in known | {jurisdictions.OPT_OUT}
        # Opt-in regimes deny a commercial send without a record; opt-out allows it.
        assert (decide(regime=regime) is None) == (regime == jurisdictions.OPT_OUT)
