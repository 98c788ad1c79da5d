from django.db import migrations


def create_default_tenant(apps, schema_editor):
    Tenant = apps.get_model("compliance", "Tenant")
    Stream = apps.get_model("compliance", "Stream")
    tenant, _ = Tenant.objects.get_or_create(slug="default", defaults={"name": "Default"})
    Stream.objects.get_or_create(
        tenant=tenant, slug="transactional",
        defaults={"name": "Transactional", "kind": "transactional"},
    )
    Stream.objects.get_or_create(
        tenant=tenant, slug="marketing", defaults={"name": "Marketing", "kind": "commercial"}
    )


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]

    operations = [migrations.RunPython(create_default_tenant, migrations.RunPython.noop)]
