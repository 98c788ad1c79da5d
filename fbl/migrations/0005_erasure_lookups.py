import django.db.models.deletion
from django.db import migrations, models


def index_stored_mail(apps, schema_editor):
    """Messages and relay events stored before the index existed get their mentions, so an
    erasure finds them too (the same reading as fbl.services.mentions, on historical models)."""
    import gzip
    import json

    from django.conf import settings

    from fbl import redaction
    from suppression import addresses

    Mention = apps.get_model("fbl", "Mention")
    InboundMessage = apps.get_model("fbl", "InboundMessage")
    RelayEvent = apps.get_model("fbl", "RelayEvent")
    digest = addresses.hasher(settings.ADDRESS_HASH_KEY.encode())

    def hashes(found):
        out = set()
        for token in sorted(found)[:2000]:
            try:
                out.add(digest(addresses.normalise(token).encode("utf-8")))
            except addresses.InvalidAddress:
                continue
        return sorted(out)[:1000]

    for message in InboundMessage.objects.iterator(chunk_size=500):
        found = redaction.addresses_mentioned(gzip.decompress(bytes(message.raw_gzip)))
        found |= {a.lower() for a in (message.envelope_sender, message.envelope_recipient) if a}
        Mention.objects.bulk_create(
            Mention(address_hash=h, message_id=message.pk) for h in hashes(found)
        )
    for event in RelayEvent.objects.exclude(record=None).iterator(chunk_size=500):
        found = redaction.addresses_in_text(json.dumps(event.record, ensure_ascii=False))
        Mention.objects.bulk_create(
            Mention(address_hash=h, relay_event_id=event.pk) for h in hashes(found)
        )


class Migration(migrations.Migration):

    dependencies = [
        ('fbl', '0004_tenant_bound_sources'),
    ]

    operations = [
        migrations.CreateModel(
            name='Mention',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('address_hash', models.BinaryField(max_length=32)),
                ('message', models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='fbl.inboundmessage')),
                ('relay_event', models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='fbl.relayevent')),
            ],
            options={
                'indexes': [models.Index(fields=['address_hash'], name='fbl_mention_hash')],
            },
        ),
        migrations.RunPython(index_stored_mail, migrations.RunPython.noop),
    ]
