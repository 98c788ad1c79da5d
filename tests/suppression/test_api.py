"""The relay check API and the suppression list API (DESIGN.md's public contracts)."""

import base64
import datetime

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from suppression import addresses, selectors, services
from suppression.models import Suppression

pytestmark = pytest.mark.django_db

READ = "suppression:read"
WRITE = "suppression:write"


def test_single_check_answers_the_contract_shape(api_client, suppress):
    suppress("pat@example.com", "unsubscribe", scope="commercial")
    client = api_client(READ)
    answer = client.get(
        "/api/v1/suppressions/check", {"address": "Pat@Example.com", "stream": "marketing"}
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "address": "Pat@Example.com",
        "suppressed": True,
        "reason": "unsubscribe",
        "scope": "commercial",
    }
    clean = client.get(
        "/api/v1/suppressions/check", {"address": "pat@example.com", "stream": "transactional"}
    )
    assert clean.json() == {
        "address": "pat@example.com",
        "suppressed": False,
        "reason": None,
        "scope": None,
    }


def test_check_answers_may_be_cached_briefly(api_client, settings):
    settings.SUPPRESSION_CHECK_CACHE_SECONDS = 15
    answer = api_client(READ).get(
        "/api/v1/suppressions/check", {"address": "a@example.com", "stream": "marketing"}
    )
    assert answer["Cache-Control"] == "private, max-age=15"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"address": "a@example.com", "stream": "nosuch"}, "unknown stream 'nosuch'"),
        ({"address": "a@example.com"}, "stream"),
        ({"address": "not an address", "stream": "marketing"}, "invalid address"),
        ({"address": "a@example.com", "stream": "marketing", "tenant": "nosuch"}, "unknown tenant"),
    ],
)
def test_single_check_bad_input_is_a_4xx_with_a_message(api_client, params, message):
    answer = api_client(READ).get("/api/v1/suppressions/check", params)
    assert 400 <= answer.status_code < 500
    assert message in str(answer.json())


def test_batch_check_lists_only_the_suppressed_and_the_invalid(api_client, suppress):
    one = suppress("one@example.com", "hard_bounce", scope="global")
    two = suppress("two@example.com", "unsubscribe", scope="stream:marketing")
    answer = api_client(READ).post(
        "/api/v1/suppressions/check",
        {
            "stream": "marketing",
            "addresses": ["ONE@example.com", "two@example.com", "three@example.com", "bad@@x"],
        },
        format="json",
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["checked"] == 4
    found = {s["address"]: (s["reason"], s["scope"]) for s in body["suppressed"]}
    assert found == {
        "ONE@example.com": ("hard_bounce", "global"),
        "two@example.com": ("unsubscribe", "stream:marketing"),
    }
    # Each entry's time as ISO 8601 with its offset, microseconds kept.
    since = {s["address"]: s["since"] for s in body["suppressed"]}
    assert since == {
        "ONE@example.com": one.created_at.isoformat(),
        "two@example.com": two.created_at.isoformat(),
    }
    assert all(datetime.datetime.fromisoformat(s).utcoffset() is not None for s in since.values())
    assert [i["address"] for i in body["invalid"]] == ["bad@@x"]
    assert body["invalid"][0]["reason"]


def test_a_batch_looked_up_in_parts_answers_as_one(api_client, suppress, monkeypatch):
    # A large batch is hashed and looked up part by part; an address repeated in a later part,
    # under another spelling, is still reported under each spelling, and the malformed ones of
    # every part are listed in the order given.
    monkeypatch.setattr(selectors, "FIRST_PART", 2)
    monkeypatch.setattr(selectors, "LARGEST_PART", 3)
    suppress("one@example.com", "hard_bounce", scope="global")
    suppress("six@example.com", "unsubscribe", scope="commercial")
    batch = [
        "one@example.com", "bad@@x",  # part 1
        "two@example.com", "ONE@example.com", "also bad",  # part 2
        "six@example.com", "three@example.com", " One@Example.com ",  # part 3
    ]  # fmt: skip
    body = (
        api_client(READ)
        .post("/api/v1/suppressions/check", {"stream": "marketing", "addresses": batch}, "json")
        .json()
    )
    assert body["checked"] == 8
    assert sorted((s["address"], s["reason"]) for s in body["suppressed"]) == [
        (" One@Example.com ", "hard_bounce"),
        ("ONE@example.com", "hard_bounce"),
        ("one@example.com", "hard_bounce"),
        ("six@example.com", "unsubscribe"),
    ]
    assert [i["address"] for i in body["invalid"]] == ["bad@@x", "also bad"]


def hex_hash(address: str) -> str:
    """The keyed hash a relay's mirror holds for `address`, in hex."""
    return addresses.hash_address(address, settings.ADDRESS_HASH_KEY.encode()).hex()


def test_a_batch_of_hashes_answers_each_hash_as_given_in_order(api_client, suppress):
    one = suppress("one@example.com", "hard_bounce", scope="global")
    two = suppress("two@example.com", "unsubscribe", scope="stream:marketing")
    one_hex, two_hex = hex_hash("one@example.com"), hex_hash("two@example.com")
    batch = [
        two_hex,
        one_hex.upper(),  # either case
        hex_hash("three@example.com"),
        "not a hash",
        one_hex,  # asked twice: answered twice
        one_hex[:-2],  # too short
        one_hex[:-2] + " 0",  # the right length, but not all digits
    ]
    answer = api_client(READ).post(
        "/api/v1/suppressions/check", {"stream": "marketing", "hashes": batch}, format="json"
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["checked"] == 7
    assert body["suppressed"] == [
        {
            "hash": two_hex,
            "reason": "unsubscribe",
            "scope": "stream:marketing",
            "since": two.created_at.isoformat(),
        },
        {
            "hash": one_hex.upper(),
            "reason": "hard_bounce",
            "scope": "global",
            "since": one.created_at.isoformat(),
        },
        {
            "hash": one_hex,
            "reason": "hard_bounce",
            "scope": "global",
            "since": one.created_at.isoformat(),
        },
    ]
    assert [i["hash"] for i in body["invalid"]] == ["not a hash", one_hex[:-2], one_hex[:-2] + " 0"]
    assert all("64 hexadecimal digits" in i["reason"] for i in body["invalid"])


def test_a_hash_asked_twice_in_lower_case_is_answered_twice_in_place(api_client, suppress):
    suppress("one@example.com", "hard_bounce", scope="global")
    suppress("two@example.com", "unsubscribe", scope="commercial")
    one, two, new = (hex_hash(f"{name}@example.com") for name in ("one", "two", "new"))
    answer = api_client(READ).post(
        "/api/v1/suppressions/check",
        {"stream": "marketing", "hashes": [one, new, two, one]},
        format="json",
    )
    assert [(s["hash"], s["reason"]) for s in answer.json()["suppressed"]] == [
        (one, "hard_bounce"),
        (two, "unsubscribe"),
        (one, "hard_bounce"),
    ]


def test_a_batch_of_hashes_is_answered_as_the_same_batch_of_addresses(api_client, suppress):
    # The same entries block, under the same rule: a transactional stream only by "never mail"
    # entries, a commercial one by opt-outs too.
    suppress("bounced@example.com", "hard_bounce", scope="global")
    suppress("optout@example.com", "unsubscribe", scope="commercial")
    services.lift(suppression=suppress("lifted@example.com", "manual"), note="test")
    asked = ["bounced@example.com", "optout@example.com", "lifted@example.com", "new@example.com"]
    client = api_client(READ)
    for stream in ("marketing", "transactional"):
        by_address = client.post(
            "/api/v1/suppressions/check", {"stream": stream, "addresses": asked}, format="json"
        ).json()
        by_hash = client.post(
            "/api/v1/suppressions/check",
            {"stream": stream, "hashes": [hex_hash(a) for a in asked]},
            format="json",
        ).json()
        answered = {hex_hash(s.pop("address")): s for s in by_address["suppressed"]}
        assert {s.pop("hash"): s for s in by_hash["suppressed"]} == answered
        assert answered, "the commercial stream is blocked by both entries"


@pytest.mark.parametrize("chunked", [True, False], ids=["streamed in chunks", "read whole"])
def test_a_batch_of_hashes_over_many_rows_reports_each_widest_entry(
    api_client, suppress, monkeypatch, chunked
):
    # More rows than one chunk of the streamed lookup (sql.STREAM_CHUNK), and without chunks
    # (a libpq older than 17): the answer is built row by row either way.
    import psycopg

    from suppression import sql

    monkeypatch.setattr(psycopg.capabilities, "has_stream_chunked", lambda check=False: chunked)
    listed = [f"user{i}@example.com" for i in range(sql.STREAM_CHUNK * 3)]
    for i, address in enumerate(listed):
        suppress(address, "complaint" if i % 2 else "unsubscribe", scope="commercial")
    # Two entries of one address: the wider one is reported, whichever row comes first.
    suppress(listed[7], "hard_bounce", scope="global")
    asked = [*reversed(listed), "new@example.com"]
    client = api_client(READ)
    by_hash = client.post(
        "/api/v1/suppressions/check",
        {"stream": "marketing", "hashes": [hex_hash(a) for a in asked]},
        format="json",
    ).json()
    assert [s["hash"] for s in by_hash["suppressed"]] == [hex_hash(a) for a in reversed(listed)]
    reported = {s["hash"]: (s["reason"], s["scope"]) for s in by_hash["suppressed"]}
    assert reported[hex_hash(listed[7])] == ("hard_bounce", "global")
    assert reported[hex_hash(listed[8])] == ("unsubscribe", "commercial")
    assert reported[hex_hash(listed[9])] == ("complaint", "commercial")
    by_address = client.post(
        "/api/v1/suppressions/check", {"stream": "marketing", "addresses": asked}, format="json"
    ).json()
    answered = {hex_hash(s.pop("address")): s for s in by_address["suppressed"]}
    assert {s.pop("hash"): s for s in by_hash["suppressed"]} == answered


def test_a_batch_lookup_stopped_midway_leaves_the_connection_usable(suppress, default_tenant):
    """A failure while the rows stream in (here: the caller's) ends the lookup and its
    transaction; the connection answers the next lookup."""
    from suppression import rules, sql

    listed = [suppress(f"user{i}@example.com", scope="commercial") for i in range(250)]
    hashes = b"".join(bytes(entry.address_hash) for entry in listed)
    from compliance.models import Stream

    marketing = Stream.objects.get(tenant=default_tenant, slug="marketing")
    keys = rules.blocking_keys(tenant_id=default_tenant.pk, stream_id=marketing.pk, commercial=True)

    def fail(row):
        raise RuntimeError("the caller gave up")

    with pytest.raises(RuntimeError, match="gave up"):
        sql.each_blocking_row(hashes, keys, fail)
    found = []
    sql.each_blocking_row(hashes, keys, found.append)
    assert sorted(row[0] for row in found) == sorted(bytes(e.address_hash) for e in listed)


def test_a_batch_names_addresses_or_hashes_not_both(api_client):
    client = api_client(READ)
    empty = client.post(
        "/api/v1/suppressions/check", {"stream": "marketing", "hashes": []}, format="json"
    )
    assert empty.json() == {"checked": 0, "suppressed": [], "invalid": []}
    both = {"stream": "marketing", "addresses": ["a@example.com"], "hashes": [hex_hash("a@x.io")]}
    answer = client.post("/api/v1/suppressions/check", both, format="json")
    assert answer.status_code == 400
    assert "not both" in answer.json()["detail"]
    not_strings = {"stream": "marketing", "hashes": [hex_hash("a@x.io"), 7]}
    answer = client.post("/api/v1/suppressions/check", not_strings, format="json")
    assert answer.status_code == 400
    assert answer.json()["detail"] == "'hashes' must be a list of strings"
    too_many = {"stream": "marketing", "hashes": [hex_hash("a@x.io")] * 100_001}
    answer = client.post("/api/v1/suppressions/check", too_many, format="json")
    assert answer.status_code == 413
    assert answer.json()["detail"] == "at most 100000 hashes per request, got 100001"


def test_batch_check_refuses_more_than_100000_addresses(api_client):
    answer = api_client(READ).post(
        "/api/v1/suppressions/check",
        {"stream": "marketing", "addresses": ["a@example.com"] * 100_001},
        format="json",
    )
    assert answer.status_code == 413
    assert "100000" in answer.json()["detail"]


def test_batch_checks_take_100000_ordinary_addresses_or_hashes(api_client, suppress):
    # 4.7 MB of addresses, 6.8 MB of hashes: more than Django lets a form post.
    suppress("name.surname99999@example-company.com", "hard_bounce", scope="global")
    batch = [f"name.surname{i}@example-company.com" for i in range(100_000)]
    client = api_client(READ)
    for name, values in (("addresses", batch), ("hashes", [hex_hash(a) for a in batch])):
        answer = client.post(
            "/api/v1/suppressions/check", {"stream": "marketing", name: values}, format="json"
        )
        assert answer.status_code == 200, answer.content[:300]
        assert answer.json()["checked"] == 100_000
        assert len(answer.json()["suppressed"]) == 1


def test_a_batch_body_over_its_limit_is_refused_before_it_is_read(api_client):
    from compliance.parsers import BATCH_MAX_BYTES

    answer = api_client(READ).generic(
        "POST",
        "/api/v1/suppressions/check",
        b"{}",
        content_type="application/json",
        CONTENT_LENGTH=str(BATCH_MAX_BYTES + 1),
    )
    assert answer.status_code == 413
    assert "over 33554432 bytes" in answer.json()["detail"]


def test_batch_check_refuses_malformed_json(api_client):
    answer = api_client(READ).post(
        "/api/v1/suppressions/check",
        data='{"stream": "marketing",',
        content_type="application/json",
    )
    assert answer.status_code == 400
    assert "JSON" in answer.json()["detail"]


@pytest.mark.parametrize(
    "addresses",
    [[1, 2], ["a@example.com", None], ["a@example.com", ["b@example.com"]], "a@example.com"],
)
def test_batch_check_refuses_addresses_that_are_not_a_list_of_strings(api_client, addresses):
    answer = api_client(READ).post(
        "/api/v1/suppressions/check",
        {"stream": "marketing", "addresses": addresses},
        format="json",
    )
    assert answer.status_code == 400
    assert "list of strings" in answer.json()["detail"]


@pytest.mark.parametrize("field", ["stream", "topic", "tenant"])
def test_batch_check_refuses_a_stream_topic_or_tenant_that_is_not_a_string(api_client, field):
    body = {"stream": "marketing", "addresses": ["a@example.com"], field: ["marketing"]}
    answer = api_client(READ).post("/api/v1/suppressions/check", body, format="json")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["detail"]


@pytest.mark.parametrize("field, status", [("stream", 400), ("topic", 400), ("tenant", 404)])
def test_checks_answer_a_nul_in_a_stream_topic_or_tenant_as_unknown(api_client, field, status):
    # PostgreSQL text cannot hold NUL: no such name exists, and asking the database would fail.
    client = api_client(READ)
    names = {"stream": "marketing", field: "market\x00ing"}
    single = client.get("/api/v1/suppressions/check", {"address": "a@example.com", **names})
    batch = client.post(
        "/api/v1/suppressions/check", {"addresses": ["a@example.com"], **names}, format="json"
    )
    for answer in (single, batch):
        assert answer.status_code == status, answer.content
        assert "unknown" in answer.json()["detail"]


def test_checks_need_the_read_scope(api_client):
    answer = api_client(WRITE).get(
        "/api/v1/suppressions/check", {"address": "a@example.com", "stream": "marketing"}
    )
    assert answer.status_code == 403
    assert APIClient().get("/api/v1/suppressions/check").status_code == 401


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-key", "Basic dXNlcjpwdw==", "Bearer "],
    ids=["none", "unknown key", "not bearer", "empty"],
)
def test_the_single_check_refuses_a_request_exactly_as_the_rest_of_the_api(authorization, db):
    """The GET check answers without DRF's machinery; its refusals must not differ."""
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    single = client.get("/api/v1/suppressions/check", {"address": "a@example.com"})
    batch = client.post("/api/v1/suppressions/check", {"addresses": []}, format="json")
    assert single.status_code == batch.status_code == 401
    assert single.json() == batch.json()
    assert single["WWW-Authenticate"] == batch["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_single_check_refuses_a_missing_scope_and_another_tenant_like_the_batch(
    api_client, make_tenant
):
    make_tenant("other")
    for client, tenant in (
        (api_client(WRITE), None),
        (api_client(READ, tenant=make_tenant("mine")), "other"),
    ):
        params = {"stream": "marketing", **({"tenant": tenant} if tenant else {})}
        single = client.get("/api/v1/suppressions/check", {"address": "a@example.com", **params})
        batch = client.post(
            "/api/v1/suppressions/check", {"addresses": ["a@example.com"], **params}, format="json"
        )
        assert single.status_code == batch.status_code == 403
        assert single.json() == batch.json()


def test_add_then_lift_through_the_api(api_client):
    client = api_client(READ, WRITE)
    added = client.post(
        "/api/v1/suppressions/",
        {"address": "Kim@Example.com", "reason": "manual", "note": "CRM sync"},
        format="json",
    )
    assert added.status_code == 201
    entry = added.json()
    assert (entry["address"], entry["scope"], entry["tenant"], entry["active"]) == (
        "kim@example.com",
        "commercial",
        "default",
        True,
    )
    again = client.post(
        "/api/v1/suppressions/", {"address": "kim@example.com", "reason": "manual"}, format="json"
    )
    assert again.status_code == 200

    no_reason = client.delete(f"/api/v1/suppressions/{entry['id']}/")
    assert no_reason.status_code == 400
    assert "reason is required" in no_reason.json()["detail"]

    lifted = client.delete(
        f"/api/v1/suppressions/{entry['id']}/", {"reason": "added by mistake"}, format="json"
    )
    assert lifted.status_code == 200
    assert lifted.json()["active"] is False
    row = Suppression.objects.get(pk=entry["id"])
    assert list(row.events.values_list("action", flat=True)) == ["add", "lift"]


def test_api_keys_cannot_lift_a_complaint(api_client, suppress):
    row = suppress("a@example.com", "complaint")
    answer = api_client(WRITE).delete(f"/api/v1/suppressions/{row.pk}/?reason=please")
    assert answer.status_code == 403
    row.refresh_from_db()
    assert row.is_active


def test_add_refuses_an_unknown_reason_or_scope(api_client):
    client = api_client(WRITE)
    bad_reason = client.post(
        "/api/v1/suppressions/", {"address": "a@example.com", "reason": "dislike"}, format="json"
    )
    assert bad_reason.status_code == 400
    bad_scope = client.post(
        "/api/v1/suppressions/",
        {"address": "a@example.com", "reason": "manual", "scope": "stream:x"},
        format="json",
    )
    assert bad_scope.status_code == 400
    assert "unknown stream 'x'" in bad_scope.json()["detail"]
    assert Suppression.objects.count() == 0


def test_list_filters_and_cursor_pages(api_client, suppress):
    for i in range(5):
        suppress(f"u{i}@example.com", "unsubscribe")
    suppress("b@example.com", "hard_bounce")
    client = api_client(READ)
    bounces = client.get("/api/v1/suppressions/", {"reason": "hard_bounce"}).json()
    assert [r["address"] for r in bounces["results"]] == ["b@example.com"]
    by_address = client.get("/api/v1/suppressions/", {"address": "U3@EXAMPLE.COM"}).json()
    assert [r["address"] for r in by_address["results"]] == ["u3@example.com"]

    seen, url = [], "/api/v1/suppressions/?page_size=2&reason=unsubscribe"
    while url:
        page = client.get(url).json()
        seen += [r["address"] for r in page["results"]]
        url = page["next"]
    assert seen == [f"u{i}@example.com" for i in reversed(range(5))]


@pytest.mark.parametrize(
    "cursor",
    [
        base64.b64encode(b"p=not-an-id").decode(),  # well-formed, but its position is no id
        base64.b64encode(b"o=-1").decode(),
        "not base64 at all",
    ],
)
def test_list_refuses_a_malformed_cursor(api_client, suppress, cursor):
    suppress("u@example.com", "unsubscribe")
    answer = api_client(READ).get("/api/v1/suppressions/", {"cursor": cursor})
    assert answer.status_code == 404, answer.content
    assert answer.json() == {"detail": "Invalid cursor", "code": "not_found"}


def test_list_filters_by_created_range(api_client, suppress):
    old = timezone.now() - datetime.timedelta(days=30)
    suppress("old@example.com", "manual", created_at=old)
    suppress("new@example.com", "manual")
    since = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    page = api_client(READ).get("/api/v1/suppressions/", {"created_after": since}).json()
    assert [r["address"] for r in page["results"]] == ["new@example.com"]


def test_a_tenant_key_sees_only_its_own_and_shared_entries(api_client, suppress, make_tenant):
    other = make_tenant("other")
    suppress("mine@example.com", "manual")
    suppress("theirs@example.com", "manual", tenant=other)
    suppress("shared@example.com", "hard_bounce", tenant=None)
    client = api_client(READ, WRITE, tenant=other)
    listed = {r["address"] for r in client.get("/api/v1/suppressions/").json()["results"]}
    # shared entries are listed by hash only (tests/suppression/test_tenant_visibility.py)
    assert listed == {"theirs@example.com", None}
    mine = Suppression.objects.get(address="mine@example.com")
    assert client.get(f"/api/v1/suppressions/{mine.pk}/").status_code == 404
    assert client.delete(f"/api/v1/suppressions/{mine.pk}/?reason=x").status_code == 404
    shared = Suppression.objects.get(address="shared@example.com")
    assert client.delete(f"/api/v1/suppressions/{shared.pk}/?reason=x").status_code == 403
    # its checks run against its own tenant, and naming another is refused
    check = client.get(
        "/api/v1/suppressions/check", {"address": "mine@example.com", "stream": "marketing"}
    ).json()
    assert check["suppressed"] is False
    refused = client.get(
        "/api/v1/suppressions/check",
        {"address": "mine@example.com", "stream": "marketing", "tenant": "default"},
    )
    assert refused.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_single_check_on_a_connection_that_died_between_requests_still_answers(
    suppress, default_tenant
):
    """The single check skips Django's `SELECT 1` before its lookup; a lookup that finds the
    server gone from its connection (a restart, an idle timeout) runs again on a new one."""
    import psycopg
    from django.db import connection

    from compliance.selectors import stream_of
    from tests.support import require

    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    suppress("gone@example.com", "hard_bounce", scope="global")
    stream = stream_of(default_tenant, "marketing")
    assert selectors.is_suppressed(stream=stream, address="gone@example.com").suppressed
    first = connection.connection.info.backend_pid
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [first])
    connection.close_if_unusable_or_obsolete()  # as Django does when the next request starts
    verdict = selectors.is_suppressed(stream=stream, address="gone@example.com")
    assert (verdict.suppressed, verdict.reason) == (True, "hard_bounce")
    assert connection.connection.info.backend_pid != first


@pytest.mark.django_db(transaction=True)
def test_a_batch_by_hashes_is_its_own_connection_check(
    api_client, suppress, monkeypatch, requests_as_served
):
    """No `SELECT 1` before a batch by hashes: its lookup checks the request's connection, and
    one the server closed between requests is replaced and the batch answered."""
    import psycopg
    from django.db import connection

    from tests.support import require

    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    suppress("gone@example.com", "hard_bounce", scope="global")
    client = api_client(READ)
    body = {"stream": "marketing", "hashes": [hex_hash("gone@example.com"), hex_hash("x@y.io")]}

    def ask() -> list[str]:
        requests_as_served()
        answer = client.post("/api/v1/suppressions/check", body, format="json")
        assert answer.status_code == 200, answer.content
        return [s["reason"] for s in answer.json()["suppressed"]]

    assert ask() == ["hard_bounce"]  # the key and the stream are looked up, then cached
    checks = []
    real = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or real())
    assert ask() == ["hard_bounce"]
    assert checks == []

    first = connection.connection.info.backend_pid
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [first])
    assert ask() == ["hard_bounce"]
    assert connection.connection.info.backend_pid != first


@pytest.mark.django_db(transaction=True)
def test_a_batch_by_hashes_cancelled_on_a_live_connection_is_not_run_again(
    default_tenant, monkeypatch
):
    import psycopg
    from django.db import OperationalError, connection

    from compliance.selectors import stream_of
    from suppression import sql
    from tests.support import require

    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    stream = stream_of(default_tenant, "marketing")
    connection.ensure_connection()
    first = connection.connection.info.backend_pid
    calls = []

    def cancelled(*args):
        calls.append(args)
        raise psycopg.errors.QueryCanceled("canceling statement due to conflict with recovery")

    monkeypatch.setattr(sql, "_batch_query", cancelled)
    connection.close_if_unusable_or_obsolete()  # as Django does when the next request starts
    with pytest.raises(OperationalError):
        selectors.suppressed_hashes_among(stream=stream, hashes_=[hex_hash("any@example.com")])
    assert len(calls) == 1
    assert connection.connection.info.backend_pid == first


@pytest.mark.django_db(transaction=True)
def test_a_single_check_cancelled_on_a_live_connection_is_not_run_again(
    suppress, default_tenant, monkeypatch
):
    """Only a dead connection is replaced: a query the server cancelled (as a replica does in a
    recovery conflict) is an error for the caller, whose relay read then asks the primary."""
    import psycopg
    from django.db import OperationalError, connection

    from compliance.selectors import stream_of
    from suppression import sql
    from tests.support import require

    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    stream = stream_of(default_tenant, "marketing")
    connection.ensure_connection()
    first = connection.connection.info.backend_pid
    calls = []

    def cancelled(conn, digest):
        calls.append(digest)
        raise psycopg.errors.QueryCanceled("canceling statement due to conflict with recovery")

    monkeypatch.setattr(sql, "_entries_of_one", cancelled)
    connection.close_if_unusable_or_obsolete()  # as Django does when the next request starts
    with pytest.raises(OperationalError):
        selectors.is_suppressed(stream=stream, address="any@example.com")
    assert len(calls) == 1
    assert connection.connection.info.backend_pid == first


@pytest.mark.parametrize(
    "lookup",
    [
        lambda sql, keys: sql.blocking_rows([b"x" * 32], keys),
        lambda sql, keys: sql.blocking_rows_for_one(b"x" * 32, keys),
    ],
    ids=["batch", "single"],
)
def test_a_database_error_in_a_lookup_is_djangos_own(db, lookup):
    """The batch and single lookups use cursors of psycopg's own; their failures must still be
    Django's error types, which the API and the callers handle."""
    import psycopg
    from django.db import DatabaseError, connection

    from suppression import rules, sql
    from tests.support import require

    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    connection.ensure_connection()
    with pytest.raises(psycopg.Error):  # behind Django's back: the transaction is now aborted
        connection.connection.execute("SELECT 1/0")
    keys = rules.BlockingKeys(any_reason=("1:commercial",), never_mail_only=())
    with pytest.raises(DatabaseError):
        lookup(sql, keys)
