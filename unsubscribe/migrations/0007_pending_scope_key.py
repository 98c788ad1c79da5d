"""Pending opt-outs carry the key of the entry they become, so checks see them before a worker
applies them; the requests already pending get theirs here."""

from django.db import migrations, models


def _scope_key(tenant_id, breadth, stream_id, topic_id) -> str:
    # suppression.rules.scope_key as it stands: the key of what the request opts out of.
    if breadth == "commercial":
        return f"{tenant_id}:commercial"
    if topic_id is not None:
        return f"{tenant_id}:topic:{topic_id}"
    return f"{tenant_id}:stream:{stream_id}"


def backfill_pending(apps, schema_editor):
    UnsubscribeRequest = apps.get_model("unsubscribe", "UnsubscribeRequest")
    pending = UnsubscribeRequest.objects.filter(applied_at__isnull=True, scope_key__isnull=True)
    batch = []
    for row in pending.only("pk", "tenant_id", "breadth", "stream_id", "topic_id").iterator():
        row.scope_key = _scope_key(row.tenant_id, row.breadth, row.stream_id, row.topic_id)
        batch.append(row)
        if len(batch) >= 1000:
            UnsubscribeRequest.objects.bulk_update(batch, ["scope_key"])
            batch = []
    UnsubscribeRequest.objects.bulk_update(batch, ["scope_key"])


class Migration(migrations.Migration):
    dependencies = [
        ("unsubscribe", "0006_erasure_lookups"),
    ]

    operations = [
        migrations.AddField(
            model_name="unsubscriberequest",
            name="scope_key",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True),
        ),
        migrations.AddIndex(
            model_name="unsubscriberequest",
            index=models.Index(
                condition=models.Q(("applied_at__isnull", True)),
                fields=["address_hash"],
                name="unsubscribe_pending_by_hash",
            ),
        ),
        migrations.RunPython(backfill_pending, migrations.RunPython.noop, elidable=True),
    ]
