"""Sending domains in the admin: the list with each domain's last verdict, the "Check now"
action and button (both read DNS at once and keep the result), the read-only history."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from compliance.domains.models import DomainCheck, SendingDomain

from .conftest import TIMEOUT

CHANGELIST = "admin:domains_sendingdomain_changelist"


@pytest.fixture(autouse=True)
def dns(settings, zone):
    settings.DOMAIN_NAMESERVERS = [zone.nameserver]
    settings.DOMAIN_DNS_TIMEOUT = TIMEOUT


@pytest.fixture
def domain(db):
    return SendingDomain.objects.create(domain="example.test", dkim_selectors=["s1"])


def test_the_list_shows_each_domains_last_verdict(staff_client, domain):
    SendingDomain.objects.create(domain="nodmarc.test", dkim_selectors=["s1"])
    DomainCheck.objects.create(domain=domain, verdict="fail")
    DomainCheck.objects.create(domain=domain, verdict="pass")

    page = staff_client.get(reverse(CHANGELIST)).content.decode()

    assert "example.test" in page and "nodmarc.test" in page
    assert '<td class="field-last_verdict">pass</td>' in page
    assert '<td class="field-last_verdict">not checked</td>' in page


def test_check_now_on_selected_domains_checks_and_keeps_the_result(staff_client, domain):
    other = SendingDomain.objects.create(domain="nodmarc.test", dkim_selectors=["s1"])

    response = staff_client.post(
        reverse(CHANGELIST),
        {"action": "check_selected", "_selected_action": [domain.pk, other.pk]},
        follow=True,
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Checked example.test: pass" in page and "Checked nodmarc.test: fail" in page
    assert domain.checks.get().verdict == "pass"
    assert other.checks.get().verdict == "fail"


def test_the_check_now_button_checks_and_shows_the_result_on_the_page(staff_client, domain):
    change = reverse("admin:domains_sendingdomain_change", args=[domain.pk])
    button = reverse("admin:domains_sendingdomain_check", args=[domain.pk])
    page = staff_client.get(change).content.decode()
    assert f'action="{button}"' in page and ">Check now</button>" in page
    assert "Not checked yet." in page

    response = staff_client.post(button, follow=True)

    assert response.redirect_chain == [(change, 302)]
    page = response.content.decode()
    assert "Checked example.test: pass" in page
    assert "RSA 2048-bit key at s1._domainkey.example.test" in page
    assert domain.checks.count() == 1


def test_the_button_does_not_check_on_a_get(staff_client, domain):
    response = staff_client.get(reverse("admin:domains_sendingdomain_check", args=[domain.pk]))

    assert response.status_code == 403
    assert domain.checks.count() == 0


def test_staff_who_may_only_view_domains_cannot_check_them(client, django_user_model, domain):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_sendingdomain"),
        Permission.objects.get(codename="view_domaincheck"),
    )
    client.force_login(viewer)

    listing = client.get(reverse(CHANGELIST)).content.decode()
    change = client.get(reverse("admin:domains_sendingdomain_change", args=[domain.pk]))
    button = client.post(reverse("admin:domains_sendingdomain_check", args=[domain.pk]))

    assert "check_selected" not in listing
    assert ">Check now</button>" not in change.content.decode()
    assert button.status_code == 403
    assert domain.checks.count() == 0


def test_adding_a_domain_normalises_it_and_its_selectors(staff_client):
    response = staff_client.post(
        reverse("admin:domains_sendingdomain_add"),
        {"domain": "Mail.Example.TEST.", "dkim_selectors": "s1, K2048 s1"},
    )

    assert response.status_code == 302
    added = SendingDomain.objects.get()
    assert (added.domain, added.dkim_selectors) == ("mail.example.test", ["s1", "k2048"])


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("domain", "not a domain", "is not a domain name"),
        ("dkim_selectors", "s1, bad/one", "is not a DKIM selector"),
    ],
)
def test_a_bad_domain_or_selector_is_shown_as_the_forms_error(staff_client, field, value, words):
    data = {"domain": "example.test", "dkim_selectors": "s1", field: value}

    response = staff_client.post(reverse("admin:domains_sendingdomain_add"), data)

    assert response.status_code == 200
    assert words in response.content.decode()
    assert not SendingDomain.objects.exists()


def test_the_history_lists_every_check_and_cannot_be_changed(staff_client, domain):
    staff_client.post(reverse("admin:domains_sendingdomain_check", args=[domain.pk]))
    domain.dkim_selectors = ["nosuchselector"]
    domain.save()
    staff_client.post(reverse("admin:domains_sendingdomain_check", args=[domain.pk]))
    first, second = domain.checks.order_by("checked_at", "id")

    history = staff_client.get(
        reverse("admin:domains_domaincheck_changelist"), {"domain__id__exact": domain.pk}
    ).content.decode()
    detail = staff_client.get(reverse("admin:domains_domaincheck_change", args=[second.pk]))

    assert history.count('<td class="field-verdict">') == 2
    assert "no DKIM key published at nosuchselector._domainkey.example.test" in (
        detail.content.decode()
    )
    assert staff_client.get(reverse("admin:domains_domaincheck_add")).status_code == 403
    assert (
        staff_client.post(
            reverse("admin:domains_domaincheck_delete", args=[first.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert domain.checks.count() == 2


def test_the_list_costs_the_same_queries_for_many_domains(staff_client, domain):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff_client.get(reverse(CHANGELIST)).status_code == 200
        return len(captured)

    DomainCheck.objects.create(domain=domain, verdict="pass")
    one = queries()
    for i in range(10):
        other = SendingDomain.objects.create(domain=f"d{i}.test")
        DomainCheck.objects.create(domain=other, verdict="warn")

    assert queries() == one
