"""compliance.check_results: the one answer shape of the domain and message checks."""

from __future__ import annotations

import pytest

from compliance.check_results import Check, as_json, from_json, verdict


def checks(*statuses: str) -> list[Check]:
    return [Check(f"c{i}", status, f"message {i}") for i, status in enumerate(statuses)]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["pass"], "pass"),
        (["pass", "pass"], "pass"),
        (["pass", "warn", "pass"], "warn"),
        (["warn", "fail", "pass"], "fail"),
        (["fail"], "fail"),
    ],
)
def test_the_verdict_is_the_worst_status(statuses, expected):
    assert verdict(checks(*statuses)) == expected


def test_no_checks_have_no_verdict():
    with pytest.raises(ValueError, match="no status to judge"):
        verdict([])


def test_a_status_outside_pass_warn_fail_is_refused():
    with pytest.raises(ValueError, match="'ok' is not one of"):
        Check("spf", "ok", "fine")


def test_the_answer_has_the_extra_keys_first_then_verdict_and_checks():
    answer = as_json(checks("pass", "warn"), domain="example.test")

    assert answer == {
        "domain": "example.test",
        "verdict": "warn",
        "checks": [
            {"name": "c0", "status": "pass", "message": "message 0"},
            {"name": "c1", "status": "warn", "message": "message 1"},
        ],
    }
    assert list(answer) == ["domain", "verdict", "checks"]
    assert from_json(answer["checks"]) == checks("pass", "warn")
