from django.db import migrations

# The ledger refuses DELETE, and UPDATE except the erasure of a row's personal fields (GDPR Art.
# 17): every other column must stay as it was and the personal ones become empty.
PERSONAL = ("address", "ip", "user_agent", "page_url", "confirmed_ip")
_WITHOUT_PERSONAL = "".join(f" - '{name}'" for name in PERSONAL)

FORBID = f"""
CREATE OR REPLACE FUNCTION consent_record_erase_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
    END IF;
    IF (to_jsonb(NEW){_WITHOUT_PERSONAL}) IS DISTINCT FROM (to_jsonb(OLD){_WITHOUT_PERSONAL})
       OR NEW.address IS NOT NULL OR NEW.ip IS NOT NULL OR NEW.user_agent <> ''
       OR NEW.page_url <> '' OR NEW.confirmed_ip IS NOT NULL THEN
        RAISE EXCEPTION '% is append-only: only erasing its personal fields is allowed',
            TG_TABLE_NAME;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER consent_consentrecord_append_only
    BEFORE UPDATE OR DELETE ON consent_consentrecord
    FOR EACH ROW EXECUTE FUNCTION consent_record_erase_only();
"""

ALLOW = "DROP TRIGGER IF EXISTS consent_consentrecord_append_only ON consent_consentrecord;"


def forbid_changes(apps, schema_editor):
    # SQLite, the embedded default, relies on the model's own refusal.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORBID, params=None)


def allow_changes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ALLOW)


def _purposes(apps, tenant_id, label):
    """The preference centre stored a suppression scope label as its purpose."""
    Stream = apps.get_model("compliance", "Stream")
    Topic = apps.get_model("compliance", "Topic")
    kind, _, rest = label.partition(":")
    if kind == "topic":
        stream_slug, _, topic_slug = rest.partition("/")
        topic = Topic.objects.filter(
            stream__tenant_id=tenant_id, stream__slug=stream_slug, slug=topic_slug
        ).first()
        return [(topic.stream_id, topic.pk)] if topic else []
    if kind == "stream":
        stream = Stream.objects.filter(tenant_id=tenant_id, slug=rest).first()
        return [(stream.pk, None)] if stream else []
    streams = Stream.objects.filter(tenant_id=tenant_id, kind="commercial").order_by("pk")
    return [(pk, None) for pk in streams.values_list("pk", flat=True)]


def carry_over_earlier_consents(apps, schema_editor):
    """The preference centre's earlier consent events become ledger records (address unknown:
    those events kept only its hash)."""
    ConsentEvent = apps.get_model("compliance", "ConsentEvent")
    ConsentRecord = apps.get_model("consent", "ConsentRecord")
    ConsentState = apps.get_model("consent", "ConsentState")
    ConsentText = apps.get_model("consent", "ConsentText")
    import hashlib

    for event in ConsentEvent.objects.order_by("occurred_at", "pk").iterator():
        text = None
        if event.wording:
            digest = hashlib.sha256(event.wording.encode()).hexdigest()
            text, _ = ConsentText.objects.get_or_create(
                sha256=digest, tenant_id=event.tenant_id, defaults={"body": event.wording}
            )
        action = "granted" if event.action == "given" else "withdrawn"
        for stream_id, topic_id in _purposes(apps, event.tenant_id, event.purpose):
            row = ConsentRecord.objects.create(
                actor_label="preference centre",
                via="system",
                tenant_id=event.tenant_id,
                stream_id=stream_id,
                topic_id=topic_id,
                address=None,
                address_hash=event.address_hash,
                action=action,
                basis="consent",
                method="preference_centre",
                occurred_at=event.occurred_at,
                ip=event.ip,
                user_agent=event.user_agent,
                text=text,
                cause=f"consent event #{event.pk}",
            )
            state = ConsentState.objects.filter(
                tenant_id=event.tenant_id,
                address_hash=event.address_hash,
                stream_id=stream_id,
                topic_id=topic_id,
            ).first() or ConsentState(
                tenant_id=event.tenant_id,
                address_hash=event.address_hash,
                stream_id=stream_id,
                topic_id=topic_id,
            )
            state.action, state.basis, state.since, state.record = (
                action,
                "consent",
                event.occurred_at,
                row,
            )
            state.save()


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0001_initial"),
        ("compliance", "0010_tenant_jurisdiction"),
    ]

    operations = [
        migrations.RunPython(carry_over_earlier_consents, migrations.RunPython.noop),
        migrations.RunPython(forbid_changes, allow_changes),
    ]
