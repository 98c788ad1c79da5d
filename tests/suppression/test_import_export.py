"""Importing lists (API, command, admin) and exporting them (addresses or hashes only)."""

import csv
import datetime
import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.utils import timezone

from compliance.models import OptOutRequest
from suppression.models import ImportJob, Suppression
from suppression.services import importing
from tests.support import run_manage, same_database_env

# Imports run as a task once the upload commits, so these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)

SAMPLES = Path(__file__).parent / "samples"

GENERIC = (
    "email,reason,scope,created_at\n"
    "A@example.com,unsubscribe,,2024-01-02T03:04:05Z\n"
    "b@example.com,hard_bounce,global,\n"
    "bad-address,manual,,\n"
    "c@example.com,unsubscribe,stream:marketing,\n"
    "d@example.com,manual,stream:nosuch,\n"
)


def post_csv(client, body: str, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(
        f"/api/v1/suppressions/import?{query}", data=body.encode(), content_type="text/csv"
    )


def test_api_import_adds_good_rows_and_reports_bad_ones_by_line(api_client):
    client = api_client("suppression:write")
    answer = post_csv(client, GENERIC)
    assert answer.status_code == 202, answer.content
    job = answer.json()
    assert job["format"] == "generic"
    progress = client.get(f"/api/v1/suppressions/imports/{job['id']}").json()
    assert progress["status"] == "done"
    assert progress["percent"] == 100
    assert (progress["rows_total"], progress["rows_added"], progress["rows_bad"]) == (5, 3, 2)
    assert [(e["line"], e["email"]) for e in progress["errors"]] == [
        (4, "bad-address"),
        (6, "d@example.com"),
    ]
    assert "unknown stream 'nosuch'" in progress["errors"][1]["error"]

    a = Suppression.objects.get(address="a@example.com")
    assert (a.scope, a.reason, a.origin) == ("commercial", "unsubscribe", "import")
    assert a.created_at.isoformat() == "2024-01-02T03:04:05+00:00"
    assert a.evidence == ImportJob.objects.get(pk=job["id"])
    assert a.evidence_note == f"import #{job['id']} line 2"
    assert Suppression.objects.get(address="c@example.com").scope_label == "stream:marketing"
    assert OptOutRequest.objects.filter(channel="import").count() == 2


def test_reimporting_the_same_file_changes_nothing(api_client):
    client = api_client("suppression:write")
    post_csv(client, GENERIC)
    before = list(Suppression.objects.values_list("id", "reason", "updated_at"))
    events = Suppression.objects.values_list("events__id", flat=True).count()
    again = client.get(f"/api/v1/suppressions/imports/{post_csv(client, GENERIC).json()['id']}")
    assert (again.json()["rows_added"], again.json()["rows_existing"]) == (0, 3)
    assert list(Suppression.objects.values_list("id", "reason", "updated_at")) == before
    assert Suppression.objects.values_list("events__id", flat=True).count() == events


def test_duplicate_rows_in_one_file_make_one_entry(api_client):
    body = "email\nx@example.com\nX@EXAMPLE.COM\n"
    job = post_csv(api_client("suppression:write"), body).json()
    assert Suppression.objects.count() == 1
    assert ImportJob.objects.get(pk=job["id"]).rows_added == 1


def test_an_unknown_header_is_refused_before_anything_is_stored(api_client):
    answer = post_csv(api_client("suppression:write"), "name,phone\nx,1\n")
    assert answer.status_code == 400
    assert "generic" in answer.json()["detail"]  # names the formats it knows
    assert ImportJob.objects.count() == 0


def test_a_file_that_is_not_utf8_is_refused(api_client):
    answer = api_client("suppression:write").post(
        "/api/v1/suppressions/import",
        data="email\nj\xf6rg@example.com\n".encode("latin-1"),
        content_type="text/csv",
    )
    assert answer.status_code == 400
    assert "UTF-8" in answer.json()["detail"]


@pytest.mark.parametrize("body", [b"\xff", b"em\xe9", b"email\n\xc3"])
def test_a_tiny_file_that_is_not_utf8_is_refused_too(api_client, body):
    # Bytes within the last four of the file are no character cut at a sample's edge.
    answer = api_client("suppression:write").post(
        "/api/v1/suppressions/import", data=body, content_type="text/csv"
    )
    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == "not_utf8"
    assert ImportJob.objects.count() == 0


def test_a_file_name_with_a_nul_is_refused(api_client):
    answer = api_client("suppression:write").post(
        "/api/v1/suppressions/import?filename=a%00b.csv",
        data=b"email\na@example.com\n",
        content_type="text/csv",
    )
    assert answer.status_code == 400, answer.content
    assert "NUL" in answer.json()["detail"]
    assert ImportJob.objects.count() == 0


def test_a_row_with_a_nul_is_a_bad_row_reported_without_it(api_client):
    # PostgreSQL cannot store NUL in the job's error list; the row is reported all the same.
    answer = post_csv(
        api_client("suppression:write"), "email\nn\x00l@example.com\nok@example.com\n"
    )
    assert answer.status_code == 202, answer.content
    job = ImportJob.objects.get()
    assert (job.status, job.rows_added, job.rows_bad) == ("done", 1, 1)
    assert job.errors[0]["line"] == 2
    assert job.errors[0]["email"] == "n\ufffdl@example.com"


def test_multipart_upload_and_a_forced_format(api_client):
    upload = io.BytesIO(b"email\nm@example.com\n")
    upload.name = "list.csv"
    answer = api_client("suppression:write").post(
        "/api/v1/suppressions/import?format=generic", {"file": upload}, format="multipart"
    )
    assert answer.status_code == 202
    assert answer.json()["filename"] == "list.csv"
    assert Suppression.objects.filter(address="m@example.com", reason="manual").exists()


def test_import_needs_the_write_scope(api_client):
    assert post_csv(api_client("suppression:read"), GENERIC).status_code == 403


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.csv")))
def test_every_provider_export_imports(api_client, sample):
    content = (SAMPLES / sample).read_bytes()
    job = (
        api_client("suppression:write")
        .post("/api/v1/suppressions/import", data=content, content_type="text/csv")
        .json()
    )
    job = ImportJob.objects.get(pk=job["id"])
    assert job.status == "done", job.message
    assert job.format_name != "generic" or sample == "generic.csv"
    assert job.rows_added > 0
    assert job.rows_added + job.rows_existing + job.rows_bad == job.rows_total
    reasons = set(Suppression.objects.values_list("reason", flat=True))
    assert reasons <= {
        "hard_bounce",
        "soft_bounce",
        "complaint",
        "unsubscribe",
        "manual",
        "invalid",
        "objection",
        "legal",
        "erasure",
    }


# --- soft bounces expire as those from reports do (fbl.services: SOFT_BOUNCE_SUPPRESS_DAYS) ------


@pytest.fixture(params=["bulk", "row by row"])
def import_path(request, monkeypatch, settings):
    """Both ways an import is written, each on this test's PostgreSQL: the bulk COPY statement
    (PostgreSQL) and the row-by-row path through the service (the embedded SQLite default),
    which `run_import` picks by the database's vendor."""
    settings.SOFT_BOUNCE_SUPPRESS_DAYS = 30
    if request.param == "row by row":
        monkeypatch.setattr(importing, "connection", SimpleNamespace(vendor="sqlite"))
    return request.param


def checked(client, address: str) -> bool:
    answer = client.get("/api/v1/suppressions/check", {"address": address, "stream": "marketing"})
    assert answer.status_code == 200, answer.content
    return answer.json()["suppressed"]


def test_an_imported_soft_bounce_expires_counted_from_its_date(api_client, import_path):
    now = timezone.now()
    old = now - datetime.timedelta(days=45)
    recent = now - datetime.timedelta(days=2)
    body = (
        "email,reason,scope,created_at\n"
        f"old@example.com,soft_bounce,,{old.isoformat()}\n"
        f"recent@example.com,soft_bounce,,{recent.isoformat()}\n"
        "undated@example.com,soft_bounce,,\n"
        f"dead@example.com,hard_bounce,,{old.isoformat()}\n"
    )
    job = post_csv(api_client("suppression:write"), body).json()
    assert ImportJob.objects.get(pk=job["id"]).rows_added == 4

    client = api_client("suppression:read")
    assert not checked(client, "old@example.com")
    assert checked(client, "recent@example.com")
    assert checked(client, "undated@example.com")
    assert checked(client, "dead@example.com")  # a hard bounce never expires

    entries = {row.address: row for row in Suppression.objects.all()}
    thirty_days = datetime.timedelta(days=30)
    assert entries["old@example.com"].expires_at == old + thirty_days  # kept, as history
    assert entries["recent@example.com"].expires_at == recent + thirty_days
    undated = entries["undated@example.com"]
    assert undated.expires_at == undated.created_at + thirty_days  # from the time of the import
    assert entries["dead@example.com"].expires_at is None


def test_an_old_soft_bounce_in_a_sendgrid_export_no_longer_blocks(api_client, import_path):
    recent = int((timezone.now() - datetime.timedelta(days=1)).timestamp())
    body = (
        "email,created,status,reason\n"
        # 2023-12-20: mailbox full then, not a reason to hold mail back today.
        'full.mailbox@example.org,1703088000,4.2.2,"452 4.2.2 The email account is over quota."\n'
        f'full.today@example.org,{recent},4.2.2,"452 4.2.2 The email account is over quota."\n'
        'old.address@example.com,1703001600,5.1.1,"550 5.1.1 The email account does not exist."\n'
    )
    job = post_csv(api_client("suppression:write"), body).json()
    job = ImportJob.objects.get(pk=job["id"])
    assert (job.format_name, job.rows_added) == ("sendgrid-bounces", 3)

    client = api_client("suppression:read")
    assert not checked(client, "full.mailbox@example.org")
    assert checked(client, "full.today@example.org")
    assert checked(client, "old.address@example.com")
    assert Suppression.objects.get(address="full.mailbox@example.org").reason == "soft_bounce"


def test_command_imports_a_file_and_reports_bad_rows(tmp_path, default_tenant):
    path = tmp_path / "list.csv"
    path.write_text(GENERIC)
    result = run_manage(
        "import_suppressions", str(path), "--tenant", "default", env=same_database_env()
    )
    assert result.returncode == 0, result.stderr
    out, err = result.stdout.decode(), result.stderr.decode()
    assert "generic format, 5 rows" in out
    assert "added 3, already listed 0, bad 2" in out
    assert "line 4: invalid address" in err
    assert Suppression.objects.count() == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent.csv"], "no such file"),
        (["{file}", "--tenant", "nosuch"], "unknown tenant"),
        (["{file}", "--format", "sendgrid-bounces"], ""),
    ],
)
def test_command_bad_input_exits_2(tmp_path, default_tenant, args, message):
    path = tmp_path / "list.csv"
    path.write_text(GENERIC)
    result = run_manage(
        "import_suppressions", *[a.format(file=path) for a in args], env=same_database_env()
    )
    assert result.returncode == 2
    assert message in result.stderr.decode()
    assert Suppression.objects.count() == 0


def read_export(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_export_streams_active_entries_and_can_be_imported_again(api_client, suppress):
    from suppression import services

    suppress("keep@example.com", "unsubscribe", scope="stream:marketing")
    gone = suppress("gone@example.com", "manual")
    services.lift(suppression=gone, note="test")
    rows = read_export(api_client("suppression:read").get("/api/v1/suppressions/export"))
    assert [(r["email"], r["reason"], r["scope"], r["tenant"]) for r in rows] == [
        ("keep@example.com", "unsubscribe", "stream:marketing", "default")
    ]

    header = ",".join(rows[0].keys())
    body = header + "\n" + "\n".join(",".join(r.values()) for r in rows) + "\n"
    job = post_csv(api_client("suppression:write"), body).json()
    job = ImportJob.objects.get(pk=job["id"])
    assert (job.rows_existing, job.rows_bad) == (1, 0), job.errors


def test_hash_export_carries_no_address(api_client, suppress):
    row = suppress("secret@example.com", "complaint")
    answer = api_client("suppression:read").get("/api/v1/suppressions/export", {"format": "hashes"})
    rows = read_export(answer)
    assert rows == [
        {
            "address_hmac_sha256": bytes(row.address_hash).hex(),
            "reason": "complaint",
            "scope": "commercial",
            "created_at": row.created_at.isoformat(),
        }
    ]
    assert "secret" not in str(rows)


def test_export_refuses_an_unknown_format(api_client):
    answer = api_client("suppression:read").get("/api/v1/suppressions/export", {"format": "xml"})
    assert answer.status_code == 400


def test_copy_data_carries_any_text_and_bytes_through_postgresql(db):
    """The import writes COPY's text format itself; characters COPY treats specially must
    arrive unchanged."""
    from django.db import connection, transaction

    from suppression import sql
    from tests.support import require

    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    rows = [
        (
            7,
            bytes(range(32)),
            "tab\there\\back\nnew\rret@example.com",
            3,
            "2024-01-02T03:04:05+00:00",
        ),
        (8, b"\x00" * 32, "plain@example.com", 0, None),
    ]
    data = "".join(sql.import_copy_line(*row) for row in rows)
    # The chunk table empties on commit, as each import chunk's transaction ends.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.IMPORT_TEMP_TABLE)
        with cursor.copy(sql.IMPORT_COPY) as copy:
            copy.write(data)
        cursor.execute("SELECT line, address_hash, address, target, created_at FROM import_chunk")
        found = cursor.fetchall()
    assert [(line, bytes(h), a, t) for line, h, a, t, _ in found] == [r[:4] for r in rows]
    assert found[0][4].isoformat() == "2024-01-02T03:04:05+00:00"
    assert found[1][4] is None


class _Unreadable:
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


@pytest.mark.parametrize("content_type", ["text/csv", "multipart/form-data; boundary=B"])
def test_an_oversized_upload_is_refused_from_its_length_alone(api_client, content_type, settings):
    settings.IMPORT_MAX_BYTES = 1000
    answer = api_client("suppression:write").generic(
        "POST",
        "/api/v1/suppressions/import",
        content_type=content_type,
        CONTENT_LENGTH=str(10 * 1024 * 1024),
        **{"wsgi.input": _Unreadable()},
    )
    assert answer.status_code == 413
    assert answer.json()["code"] == "too_large"
