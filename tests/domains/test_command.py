"""`python manage.py check_domain DOMAIN [--selector S ...] [--nameserver HOST[:PORT]] --json`."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from compliance.domains.models import DomainCheck, SendingDomain
from tests.dns_server import free_port
from tests.support import run_manage, same_database_env, service_env


def run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("check_domain", *args, stdout=out)
    return out.getvalue()


def test_json_has_the_domain_the_verdict_and_every_named_check(db, zone):
    answer = json.loads(
        run(
            "example.test",
            "--selector",
            "s1",
            "--selector",
            "k1024",
            "--nameserver",
            zone.nameserver,
            "--json",
        )
    )

    assert list(answer) == ["domain", "verdict", "checks"]
    assert answer["domain"] == "example.test"
    assert answer["verdict"] == "warn"
    assert [c["name"] for c in answer["checks"]] == [
        "spf",
        "spf_lookups",
        "dkim:s1",
        "dkim:k1024",
        "dmarc",
        "mx",
    ]
    for check in answer["checks"]:
        assert list(check) == ["name", "status", "message"]
        assert check["status"] in ("pass", "warn", "fail") and check["message"]


def test_without_json_it_prints_a_table(db, zone):
    out = run("nodmarc.test", "--selector", "s1", "--nameserver", zone.nameserver)

    lines = out.splitlines()
    assert lines[0] == "nodmarc.test: fail"
    assert lines[1].split()[:2] == ["spf", "pass"]
    dmarc = next(line for line in lines if line.strip().startswith("dmarc"))
    assert dmarc.split()[1] == "fail" and "no DMARC record" in dmarc


def test_a_sending_domain_keeps_the_result_in_its_history(db, zone):
    domain = SendingDomain.objects.create(domain="example.test", dkim_selectors=["s1"])

    out = run("EXAMPLE.test", "--nameserver", zone.nameserver)  # its own selectors

    assert "dkim:s1" in out
    assert "Kept in the history of the sending domain example.test." in out
    check = domain.checks.get()
    assert check.verdict == "pass"
    assert [c["name"] for c in check.checks][2] == "dkim:s1"


def test_any_other_domain_is_checked_and_nothing_is_stored(db, zone):
    answer = json.loads(run("mail.example.test", "--nameserver", zone.nameserver, "--json"))

    assert answer["domain"] == "mail.example.test"
    assert DomainCheck.objects.count() == 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["example.test", "--nameserver", "dns.google"], "is not an IP address"),
        (["example.test", "--nameserver", "127.0.0.1:99999"], "the port must be a number"),
        (["not a domain"], "is not a domain name"),
        (["example.test", "--selector", "bad/selector"], "is not a DKIM selector"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(db, args, words):
    with pytest.raises(CommandError, match=words) as refused:
        run(*args)
    assert refused.value.returncode == 2


def test_the_real_command_exits_2_for_a_bad_nameserver():
    result = run_manage(
        "check_domain", "example.test", "--nameserver", "dns.example", "--json", env=service_env()
    )

    assert result.returncode == 2
    assert "is not an IP address" in result.stderr.decode()
    assert result.stdout == b""


@pytest.mark.django_db(transaction=True)
def test_the_real_command_exits_0_whatever_the_verdict_and_stores_the_check(zone):
    domain = SendingDomain.objects.create(domain="nosuchdomain.test", dkim_selectors=["s1"])

    result = run_manage(
        "check_domain",
        "nosuchdomain.test",
        "--nameserver",
        zone.nameserver,
        "--json",
        env=same_database_env(),
    )

    assert result.returncode == 0, result.stderr.decode()
    answer = json.loads(result.stdout)
    assert answer["verdict"] == "fail"
    assert all(c["message"].startswith("NXDOMAIN") for c in answer["checks"])
    assert domain.checks.get().verdict == "fail"


def test_a_silent_nameserver_is_a_timeout_and_still_exit_0(db, settings):
    settings.DOMAIN_DNS_TIMEOUT = 0.3
    silent = f"127.0.0.1:{free_port()}"

    answer = json.loads(run("example.test", "--nameserver", silent, "--json"))

    assert answer["verdict"] == "fail"
    assert all(c["message"].startswith("DNS timeout") for c in answer["checks"])
