import pytest
from django.core.exceptions import ValidationError

from compliance.models import SendingIdentity, Stream
from compliance.selectors import identity_for_sender

pytestmark = pytest.mark.django_db


@pytest.fixture
def identities(default_tenant):
    marketing = Stream.objects.get(tenant=default_tenant, slug="marketing")
    transactional = Stream.objects.get(tenant=default_tenant, slug="transactional")
    made = {}
    for pattern, stream in [
        ("example.com", transactional),
        ("news@example.com", marketing),
        ("*.mail.example.com", marketing),
    ]:
        made[pattern] = SendingIdentity.objects.create(
            pattern=pattern, tenant=default_tenant, stream=stream
        )
    return made


@pytest.mark.parametrize(
    ("sender", "pattern"),
    [
        ("News@Example.com", "news@example.com"),
        ("receipts@example.com", "example.com"),
        ("bounce@eu.mail.example.com", "*.mail.example.com"),
        ("x@mail.example.com", None),  # *.d matches subdomains, not d itself
        ("x@other.org", None),
        ("", None),
    ],
)
def test_the_most_specific_pattern_wins(identities, sender, pattern):
    found = identity_for_sender(sender)
    assert (found.pattern if found else None) == pattern


def test_a_stream_of_another_tenant_is_refused(default_tenant, make_tenant):
    other = make_tenant("other")
    identity = SendingIdentity(
        pattern="x.org", tenant=default_tenant, stream=other.streams.get(slug="marketing")
    )
    with pytest.raises(ValidationError, match="must belong to the tenant"):
        identity.full_clean()
