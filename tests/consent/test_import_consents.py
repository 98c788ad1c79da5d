"""`manage.py import_consents FILE` and the admin upload: the API's checks per row, bad rows by
line, good rows with their evidence and text, re-imports that change nothing, and states that
only a newer record moves."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from compliance.consent import importing, rules, services
from compliance.consent.models import ConsentRecord, ConsentState, ConsentText
from compliance.models import Topic

HEADER = (
    "address,purpose,action,basis,method,collected_at,ip,user_agent,page_url,form_id,wording,"
    "privacy_notice_version,jurisdiction\n"
)
WORDING = "Yes, send me the newsletter."


def web_form_row(address="ann@example.com", *, purpose="marketing", action="grant", **overrides):
    row = {
        "address": address,
        "purpose": purpose,
        "action": action,
        "basis": "consent",
        "method": "web_form",
        "collected_at": "2024-03-01T10:00:00Z",
        "ip": "192.0.2.7",
        "user_agent": "Mozilla/5.0",
        "page_url": "https://example.com/signup",
        "form_id": "footer",
        "wording": WORDING,
        "privacy_notice_version": "v3",
        "jurisdiction": "DE",
    }
    row.update(overrides)
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow([row[c] for c in HEADER.strip().split(",")])
    return line.getvalue()


@pytest.fixture
def csv_file(tmp_path):
    def write(*rows: str, header: str = HEADER) -> str:
        path = tmp_path / "consents.csv"
        path.write_text(header + "".join(rows), encoding="utf-8")
        return str(path)

    return write


def run(path: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_consents", path, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_good_rows_are_stored_with_their_evidence_and_text_once(default_tenant, csv_file):
    path = csv_file(web_form_row("Ann@Example.com"), web_form_row("bob@example.com"))

    out, err = run(path)

    assert "added 2, already recorded 0, bad 0" in out, err
    record = ConsentRecord.objects.get(address="ann@example.com")
    assert (record.action, record.basis, record.method) == ("granted", "consent", "web_form")
    assert record.occurred_at.isoformat() == "2024-03-01T10:00:00+00:00"
    assert (record.ip, record.user_agent, record.page_url) == (
        "192.0.2.7",
        "Mozilla/5.0",
        "https://example.com/signup",
    )
    assert (record.form_id, record.privacy_notice_version, record.jurisdiction) == (
        "footer",
        "v3",
        "DE",
    )
    assert record.text.body == WORDING
    assert record.via == "command"
    assert ConsentText.objects.filter(body=WORDING).count() == 1
    assert record.import_key == importing.import_key(
        services.prepare(
            default_tenant,
            [
                {
                    "address": "ann@example.com",
                    "purpose": "marketing",
                    "action": "grant",
                    "basis": "consent",
                    "method": "web_form",
                    "evidence": {
                        "collected_at": "2024-03-01T10:00:00Z",
                        "ip": "192.0.2.7",
                        "page_url": "https://example.com/signup",
                        "wording": WORDING,
                    },
                }
            ],
        )[0]
    )
    state = ConsentState.objects.get(address_hash=record.address_hash)
    assert (state.action, state.record_id) == ("granted", record.pk)


@pytest.mark.django_db
def test_bad_rows_are_reported_by_line_and_good_rows_still_go_in(default_tenant, csv_file):
    path = csv_file(
        web_form_row("good@example.com"),  # line 2
        web_form_row("a@example.com", purpose="nosuchstream"),  # 3
        web_form_row("b@example.com", basis="whim"),  # 4
        web_form_row("c@example.com", method="carrier_pigeon"),  # 5
        web_form_row("d@example.com", page_url=""),  # 6: a web form needs its page
        web_form_row("not an address"),  # 7
        web_form_row("e@example.com", collected_at="last tuesday"),  # 8
        web_form_row("f@example.com", action="maybe"),  # 9
        web_form_row("good2@example.com"),  # 10
    )

    out, err = run(path)

    assert "added 2, already recorded 0, bad 7" in out
    lines = err.splitlines()
    assert lines[0].startswith("line 3: unknown stream 'nosuchstream'")
    assert lines[1].startswith("line 4: unknown basis 'whim'")
    assert lines[2].startswith("line 5: unknown method 'carrier_pigeon'")
    assert lines[3] == "line 6: method web_form needs evidence: page_url"
    assert lines[4].startswith("line 7: invalid address 'not an address'")
    assert lines[5].startswith("line 8: collected_at 'last tuesday' is not an ISO 8601")
    assert lines[6].startswith("line 9: unknown action 'maybe'")
    assert set(ConsentRecord.objects.values_list("address", flat=True)) == {
        "good@example.com",
        "good2@example.com",
    }
    # Nothing of a bad row is written: no record, no state, no text beyond the good rows' one.
    assert ConsentState.objects.count() == 2
    assert ConsentText.objects.count() == 1


@pytest.mark.django_db
def test_a_row_needs_its_time_even_where_the_method_does_not(default_tenant, csv_file):
    path = csv_file(web_form_row(action="withdraw", collected_at=""))

    out, err = run(path)

    assert "bad 1" in out
    assert err.startswith("line 2: collected_at is required in an import")


@pytest.mark.django_db
def test_re_importing_the_same_file_changes_nothing(default_tenant, csv_file):
    path = csv_file(web_form_row("ann@example.com"), web_form_row("bob@example.com"))
    run(path)
    before = list(ConsentRecord.objects.order_by("pk").values_list("pk", "import_key"))
    states = list(ConsentState.objects.order_by("pk").values_list("pk", "record_id", "since"))

    out, _ = run(path)

    assert "added 0, already recorded 2, bad 0" in out
    assert list(ConsentRecord.objects.order_by("pk").values_list("pk", "import_key")) == before
    assert (
        list(ConsentState.objects.order_by("pk").values_list("pk", "record_id", "since")) == states
    )


@pytest.mark.django_db
def test_the_same_row_twice_in_one_file_is_recorded_once(default_tenant, csv_file):
    out, _ = run(csv_file(web_form_row(), web_form_row()))

    assert "added 1, already recorded 1" in out
    assert ConsentRecord.objects.count() == 1


@pytest.mark.django_db
def test_an_older_imported_grant_does_not_override_a_newer_withdrawal(default_tenant, csv_file):
    services.record(
        default_tenant,
        [
            {
                "address": "ann@example.com",
                "purpose": "marketing",
                "action": "withdraw",
                "basis": "consent",
                "method": "api",
                "evidence": {"collected_at": "2025-06-01T00:00:00Z"},
            }
        ],
    )

    out, _ = run(csv_file(web_form_row("ann@example.com", collected_at="2024-03-01T10:00:00Z")))

    assert "added 1" in out
    state = ConsentState.objects.get()
    assert state.action == rules.WITHDRAWN
    assert state.since.isoformat() == "2025-06-01T00:00:00+00:00"


@pytest.mark.django_db
def test_a_newer_imported_withdrawal_moves_the_state(default_tenant, csv_file):
    path = csv_file(
        web_form_row("ann@example.com", collected_at="2024-03-01T10:00:00Z"),
        web_form_row("ann@example.com", action="withdraw", collected_at="2024-09-01T10:00:00Z"),
        web_form_row("ann@example.com", collected_at="2024-05-01T10:00:00Z"),
    )

    run(path)

    state = ConsentState.objects.get()
    assert state.action == rules.WITHDRAWN
    assert state.since.isoformat() == "2024-09-01T10:00:00+00:00"


@pytest.mark.django_db
def test_topics_wording_ids_and_missing_optional_columns(default_tenant, csv_file):
    marketing = default_tenant.streams.get(slug="marketing")
    Topic.objects.create(stream=marketing, slug="news", name="News")
    text = services.text_for(None, "Old wording shared by every tenant, v1")
    path = csv_file(
        f"ann@example.com,marketing/news,grant,consent,import,2023-01-01T00:00:00,{text.pk}\n",
        header="address,purpose,action,basis,method,collected_at,wording_id\n",
    )

    out, err = run(path)

    assert "added 1" in out, err
    record = ConsentRecord.objects.get()
    assert record.purpose == "marketing/news"
    assert record.text_id == text.pk  # the text named, not a copy of it
    assert ConsentText.objects.count() == 1
    assert record.jurisdiction == default_tenant.jurisdiction
    assert (record.ip, record.user_agent) == (None, "")


@pytest.mark.django_db
def test_other_tenants_import_into_their_own_ledger(make_tenant, csv_file):
    tenant = make_tenant("acme")

    out, _ = run(csv_file(web_form_row()), "--tenant", "acme")

    assert "added 1" in out
    assert ConsentRecord.objects.get().tenant == tenant


@pytest.mark.django_db
def test_a_file_without_an_address_column_exits_2(default_tenant, csv_file):
    path = csv_file("x@example.com,marketing\n", header="email,purpose\n")

    with pytest.raises(CommandError, match="no address column") as raised:
        run(path)

    assert raised.value.returncode == 2
    assert ConsentRecord.objects.count() == 0


@pytest.mark.django_db
def test_an_unreadable_or_missing_file_exits_2(default_tenant, tmp_path):
    binary = tmp_path / "export.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe\x00\x00 not text")

    for path in (str(binary), str(tmp_path / "missing.csv")):
        with pytest.raises(CommandError) as raised:
            run(path)
        assert raised.value.returncode == 2
    with pytest.raises(CommandError, match="unknown tenant") as raised:
        run(str(binary), "--tenant", "nobody")
    assert raised.value.returncode == 2


@pytest.mark.django_db
def test_staff_upload_in_the_admin(default_tenant, staff_client):
    upload = SimpleUploadedFile(
        "consents.csv",
        (HEADER + web_form_row("ann@example.com") + web_form_row("bad", basis="whim")).encode(),
        content_type="text/csv",
    )

    response = staff_client.post(
        reverse("consent-import"), {"file": upload, "tenant": default_tenant.pk}
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "added 1, already recorded 0, bad 1" in " ".join(page.split())
    assert "line 3: unknown basis" in page
    record = ConsentRecord.objects.get()
    assert (record.via, record.actor_user_id) == ("admin", staff_client.user.pk)


@pytest.mark.django_db
def test_the_admin_upload_is_for_staff_only(default_tenant, client, django_user_model):
    url = reverse("consent-import")
    assert client.get(url).status_code == 302  # to the admin login
    django_user_model.objects.create_user("clerk", "clerk@example.com", "pw", is_staff=True)
    client.login(username="clerk", password="pw")
    assert client.get(url).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_an_import_outside_a_transaction_checks_ahead_with_the_same_result(
    default_tenant, csv_file
):
    # Committed data: the command, run on its own, checks the next chunk on a second connection.
    path = csv_file(
        web_form_row("ann@example.com"),
        web_form_row("bob@example.com", purpose="nosuchstream"),
        web_form_row("cat@example.com", action="withdraw"),
    )

    out, err = run(path)
    again, _ = run(path)

    assert "added 2, already recorded 0, bad 1" in out
    assert err.startswith("line 3: unknown stream 'nosuchstream'")
    assert "added 0, already recorded 2, bad 1" in again
    assert ConsentRecord.objects.filter(text__body=WORDING).count() == 2
    assert ConsentState.objects.count() == 2
