from django.db import migrations


class Migration(migrations.Migration):
    """The preference centre's consent events now live in the consent ledger (consent 0002
    carries them over first)."""

    dependencies = [
        ("compliance", "0010_tenant_jurisdiction"),
        ("consent", "0002_ledger_append_only_and_earlier_consents"),
    ]

    operations = [migrations.DeleteModel(name="ConsentEvent")]
