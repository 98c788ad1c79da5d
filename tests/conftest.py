"""Fixtures that build data through the services, as the service itself would."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from compliance import services
from compliance.models import Stream, Tenant
from tests.support import BROKERS, broker_url


@pytest.fixture
def default_tenant(db) -> Tenant:
    """The tenant migrations create; made again after a transactional test flushed it."""
    tenant, _ = Tenant.objects.get_or_create(slug="default", defaults={"name": "Default"})
    for slug, kind in [
        ("transactional", Stream.Kind.TRANSACTIONAL),
        ("marketing", Stream.Kind.COMMERCIAL),
    ]:
        Stream.objects.get_or_create(
            tenant=tenant, slug=slug, defaults={"name": slug.title(), "kind": kind}
        )
    return tenant


@pytest.fixture
def make_tenant(db):
    def make(
        slug: str = "acme", *, commercial: str = "marketing", transactional: str = "transactional"
    ) -> Tenant:
        tenant = Tenant.objects.create(slug=slug, name=slug.title())
        Stream.objects.create(
            tenant=tenant, slug=commercial, name=commercial.title(), kind=Stream.Kind.COMMERCIAL
        )
        Stream.objects.create(
            tenant=tenant,
            slug=transactional,
            name=transactional.title(),
            kind=Stream.Kind.TRANSACTIONAL,
        )
        return tenant

    return make


@pytest.fixture
def make_api_key(db, default_tenant):
    """Issue a key through the service; returns (ApiKey, plain key)."""

    def make(*permissions: str, tenant: Tenant | None = None, name: str = "relay"):
        return services.issue_api_key(name=name, permissions=permissions, tenant=tenant)

    return make


@pytest.fixture
def api_client(make_api_key):
    """An API client authenticated with a fresh key holding `permissions`."""

    def make(*permissions: str, tenant: Tenant | None = None) -> APIClient:
        _, plain = make_api_key(*permissions, tenant=tenant)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
        return client

    return make


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def suppress(db, default_tenant):
    """Suppress an address through the service: suppress("a@b.com", "unsubscribe", scope=...)."""
    from suppression import services
    from suppression.scopes import parse_scope

    def make(
        address: str,
        reason: str = "unsubscribe",
        *,
        scope: str | None = None,
        tenant: Tenant | None | str = "default",
        origin: str = "api",
        **kwargs,
    ):
        if tenant == "default":
            tenant = default_tenant
        target = parse_scope(tenant, scope, reason=reason)
        return services.suppress(
            target=target, address=address, reason=reason, origin=origin, **kwargs
        ).suppression

    return make


@pytest.fixture
def make_topic(db):
    from compliance.models import Topic

    def make(stream: Stream, slug: str, name: str | None = None) -> Topic:
        return Topic.objects.create(stream=stream, slug=slug, name=name or slug.title())

    return make


@pytest.fixture
def mint(db, default_tenant):
    """Mint an unsubscribe link for a recipient of the default tenant's stream (and topic)."""
    from unsubscribe import links

    def make(
        recipient: str = "pat@example.com",
        *,
        stream: str = "marketing",
        topic=None,
        campaign: str | None = None,
    ):
        stream_obj = Stream.objects.get(tenant=default_tenant, slug=stream)
        return links.mint_link(
            stream=stream_obj, recipient=recipient, topic=topic, campaign=campaign
        )

    return make


@pytest.fixture
def requests_as_served(settings):
    """Requests as a web process serves them: API keys and streams come from the per-process
    caches (the tests' settings turn them off), and each request starts as Django starts one,
    with its connection not yet checked (the test client leaves that out): call the fixture's
    value before each request."""
    from django.db import connection

    from compliance import selectors

    settings.LOOKUP_CACHE_SECONDS = 60
    caches = (selectors._lookups, services._keys_by_hash)
    for lookups in caches:
        lookups.clear()
    yield connection.close_if_unusable_or_obsolete
    for lookups in caches:
        lookups.clear()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Every test starts with empty per-client budgets (the unsubscribe pages count them)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(params=BROKERS)
def celery_broker(request) -> str:
    """The URL of each real broker in turn (Redis, RabbitMQ): the test runs once per broker."""
    return broker_url(request.param)
