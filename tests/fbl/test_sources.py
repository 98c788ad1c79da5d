"""Every report source in one shape (fbl/sources/): the registry knows every source, a new
source is its module alone, the tenant rule is one function, and a bounced recipient is
classified by one constructor."""

from __future__ import annotations

import sys
import textwrap

import pytest

from compliance.errors import PermissionDenied
from compliance.models import Stream
from fbl import sources
from fbl.classification import bounced_recipient
from fbl.events import Context, SourceEvent
from fbl.models import RelayEvent
from fbl.provenance import OPERATOR, Provenance
from fbl.sources.base import REGISTRY
from fbl.views import esp, events, reports
from suppression.selectors import is_suppressed


def test_the_registry_lists_every_source_and_the_endpoints_use_it():
    assert set(sources.REGISTRY) == {"mail", "kumomta", "anymail"}
    assert reports.SOURCE is sources.get("mail")
    assert events.SOURCE is sources.get("kumomta")
    assert esp.SOURCE is sources.get("anymail")


def test_a_refused_webhook_is_retried_so_only_the_esp_source_skips_another_tenants_event():
    other_tenant = {
        name: source.other_tenant
        for name, source in REGISTRY.items()
        if hasattr(source, "other_tenant")
    }
    assert other_tenant == {"kumomta": "refuse", "anymail": "skip"}


# A source of one's own: a module of fbl/sources/ and nothing else.
LINES_SOURCE = '''
"""Bounces as text lines: `ADDRESS TENANT`."""

from fbl.classification import bounced_recipient
from fbl.events import Context, SourceEvent
from fbl.report import ParsedReport
from fbl.sources.base import EventSource, Reading, register


class LineSource(EventSource):
    name = "lines"
    other_tenant = "skip"

    def read(self, body, **details):
        lines = body.splitlines()
        found = []
        for number, line in enumerate(lines):
            address, tenant = line.split()
            bounced = bounced_recipient(
                address, status="5.1.1", action="failed", diagnostic="550 5.1.1 user unknown"
            )
            found.append(
                SourceEvent(
                    source=self.name,
                    kind="bounce",
                    source_id=f"line:{number}",
                    recipient=address,
                    context=Context(tenant=tenant, stream="marketing"),
                    report=ParsedReport(kind="dsn", recipients=(bounced,)),
                )
            )
        return Reading(events=found, received=len(lines))


SOURCE = register(LineSource())
'''


@pytest.fixture
def lines_module(tmp_path, monkeypatch):
    (tmp_path / "lines.py").write_text(textwrap.dedent(LINES_SOURCE))
    monkeypatch.setattr(sources, "__path__", [*sources.__path__, str(tmp_path)])
    monkeypatch.setattr(sources.base, "REGISTRY", dict(REGISTRY))
    monkeypatch.setattr(sources, "REGISTRY", sources.base.REGISTRY)
    yield
    sys.modules.pop("fbl.sources.lines", None)


def test_a_new_source_is_its_module_alone(lines_module, default_tenant, make_tenant):
    registry = sources.discover()
    assert set(registry) == {"mail", "kumomta", "anymail", "lines"}
    lines = sources.get("lines")
    marketing = Stream.objects.get(tenant=default_tenant, slug="marketing")

    taken = lines.take("gone@example.com default\n", provenance=OPERATOR)

    # The shared loop stored the event and acted on it like any relay's hard bounce.
    assert dict(taken.outcomes) == {"suppressed": 1}
    assert RelayEvent.objects.get().source == "lines"
    assert is_suppressed(stream=marketing, address="gone@example.com").suppressed

    # The tenant rule comes with it, as the source set it.
    acme = Provenance(tenant=make_tenant("acme"), operator_level=False, label="acme")
    taken = lines.take("other@example.com default\n", provenance=acme)
    assert dict(taken.outcomes) == {"other_tenant": 1}
    assert not is_suppressed(stream=marketing, address="other@example.com").suppressed


# --- the tenant rule -------------------------------------------------------------------------


def event_naming(tenant: str | None) -> SourceEvent:
    return SourceEvent(
        source="test",
        kind="delivery",
        source_id="1",
        recipient="pat@example.com",
        context=Context(tenant=tenant),
    )


@pytest.mark.django_db
def test_a_tenant_bound_poster_reports_for_its_tenant_only(make_tenant):
    acme = Provenance(tenant=make_tenant("acme"), operator_level=False, label="acme")
    for other_tenant in ("refuse", "skip"):
        assert acme.bind(event_naming(None), other_tenant=other_tenant).context.tenant == "acme"
        assert acme.bind(event_naming("acme"), other_tenant=other_tenant).context.tenant == "acme"
    assert acme.bind(event_naming("default"), other_tenant="skip") is None
    with pytest.raises(PermissionDenied, match="bound to tenant 'acme'; a record names tenant"):
        acme.bind(event_naming("default"), other_tenant="refuse")


def test_an_unbound_poster_keeps_the_tenant_an_event_names():
    for other_tenant in ("refuse", "skip"):
        bound = OPERATOR.bind(event_naming("default"), other_tenant=other_tenant)
        assert bound.context.tenant == "default"
        assert OPERATOR.bind(event_naming(None), other_tenant=other_tenant).context.tenant is None


# --- a bounced recipient, classified -----------------------------------------------------------


def test_a_dead_address_is_a_hard_bounce():
    recipient = bounced_recipient(
        "gone@example.com", status="5.1.1", action="failed", diagnostic="550 5.1.1 user unknown"
    )
    assert (recipient.category, recipient.hard, recipient.found_by) == (
        "permanent",
        True,
        "dsn_final_recipient",
    )


def test_a_refusal_of_mail_from_never_judged_the_recipient():
    recipient = bounced_recipient(
        "pat@example.com",
        status="5.1.1",
        action="failed",
        diagnostic="550 5.1.1 user unknown",
        phase="MAIL",
    )
    assert (recipient.category, recipient.hard) == ("blocked", False)


def test_the_source_may_know_the_category_or_rule_one_out():
    known = bounced_recipient(
        "pat@example.com",
        status="5.1.1",
        action="failed",
        diagnostic="550 5.1.1 user unknown",
        category="blocked",
    )
    assert (known.category, known.hard) == ("blocked", False)
    retried = bounced_recipient(
        "pat@example.com",
        status="4.1.1",
        action="delayed",
        diagnostic="450 4.1.1 user unknown",
        instead={"permanent": "transient", "unknown": "transient"},
    )
    assert (retried.category, retried.hard) == ("transient", False)
