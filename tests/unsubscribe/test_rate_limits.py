"""Per-client budgets on /u/: page views, invalid tokens and repeats are limited; a first opt-out
never is."""

from urllib.parse import urlparse

import pytest
from django.test import Client

from suppression.models import Suppression
from unsubscribe.models import UnsubscribeRequest

pytestmark = pytest.mark.django_db

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def budget(settings):
    settings.UNSUBSCRIBE_RATE_LIMIT = 3
    settings.UNSUBSCRIBE_RATE_LIMIT_SECONDS = 60
    return 3


def path_of(link) -> str:
    return urlparse(link.url).path


def test_a_mailbox_provider_posting_many_first_opt_outs_from_one_address_is_never_refused(
    mint, budget
):
    provider = Client(REMOTE_ADDR="203.0.113.5")
    statuses = {
        provider.post(path_of(mint(f"r{n}@example.com")), ONE_CLICK).status_code
        for n in range(4 * budget)
    }
    assert statuses == {200}
    assert UnsubscribeRequest.objects.count() == 4 * budget


def test_page_views_over_the_budget_get_429_with_retry_after_and_a_working_button(mint, budget):
    browser = Client(REMOTE_ADDR="198.51.100.9")
    path = path_of(mint())
    assert [browser.get(path).status_code for _ in range(budget)] == [200] * budget
    refused = browser.get(path)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    page = refused.content.decode()
    assert "try again in" in page
    assert f'action="{path}"' in page and 'value="One-Click"' in page
    assert "pat@example.com" not in page
    # The button on that page is a first opt-out: never refused.
    assert browser.post(path, {**ONE_CLICK, "from": "page"}).status_code == 200
    assert Suppression.objects.count() == 1


def test_repeats_over_the_budget_get_429_and_store_nothing(mint, budget):
    provider = Client(REMOTE_ADDR="203.0.113.5")
    path = path_of(mint())
    assert provider.post(path, ONE_CLICK).status_code == 200  # the first is not counted
    repeats = [provider.post(path, ONE_CLICK).status_code for _ in range(budget + 1)]
    assert repeats == [200] * budget + [429]
    assert UnsubscribeRequest.objects.count() == 1


def test_invalid_tokens_count_against_the_budget(client, budget):
    statuses = [client.get(f"/u/not-a-token-{n}").status_code for n in range(budget + 1)]
    assert statuses == [400] * budget + [429]
    assert client.post("/u/not-a-token", ONE_CLICK).status_code == 429


def test_the_budget_is_per_client_address(mint, budget):
    path = path_of(mint())
    first = Client(REMOTE_ADDR="198.51.100.9")
    for _ in range(budget + 1):
        first.get(path)
    assert first.get(path).status_code == 429
    assert Client(REMOTE_ADDR="198.51.100.10").get(path).status_code == 200


def test_behind_a_load_balancer_the_budget_is_per_forwarded_client(mint, budget, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    path = path_of(mint())

    def via_balancer(client_address: str) -> Client:
        # The client may send any X-Forwarded-For; the balancer appends the address it saw.
        return Client(
            REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"192.0.2.99, {client_address}"
        )

    busy = via_balancer("198.51.100.9")
    for _ in range(budget):
        busy.get(path)
    assert busy.get(path).status_code == 429
    # Another recipient behind the same balancer (and claiming the same forged first hop).
    assert via_balancer("198.51.100.10").get(path).status_code == 200


def test_over_the_budget_the_preference_centre_still_opts_out_but_does_not_resubscribe(
    mint, budget
):
    browser = Client(REMOTE_ADDR="198.51.100.9")
    path = path_of(mint())
    for _ in range(budget):
        browser.get(path)
    # Unticking the stream is an opt-out: accepted.
    assert browser.post(f"{path}/preferences", {"receive": []}).status_code == 200
    assert Suppression.objects.filter(lifted_at__isnull=True).count() == 1
    # Ticking it again would resubscribe: refused while over the budget.
    refused = browser.post(f"{path}/preferences", {"receive": ["stream"]})
    assert refused.status_code == 429
    assert "Retry-After" in refused
    assert Suppression.objects.filter(lifted_at__isnull=True).count() == 1


def test_a_budget_of_zero_turns_the_limit_off(client, mint, settings):
    settings.UNSUBSCRIBE_RATE_LIMIT = 0
    path = path_of(mint())
    assert {client.get(path).status_code for _ in range(200)} == {200}


def test_an_unreachable_cache_lets_requests_through_rather_than_failing_them(
    client, mint, budget, settings
):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    path = path_of(mint())
    assert client.post(path, ONE_CLICK).status_code == 200
    assert client.post(path, ONE_CLICK).status_code == 200  # a repeat: counted, if it could be
    assert client.get(path).status_code == 200
    assert UnsubscribeRequest.objects.count() == 1
