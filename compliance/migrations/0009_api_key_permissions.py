from django.db import migrations, models


class Migration(migrations.Migration):
    """An API key's grants are its permissions: "scope" is kept for a suppression's reach."""

    dependencies = [
        ("compliance", "0008_tenant_bound_sources"),
    ]

    operations = [
        migrations.RenameField(model_name="apikey", old_name="scopes", new_name="permissions"),
        migrations.AlterField(
            model_name="apikey",
            name="permissions",
            field=models.JSONField(default=list, help_text="What this key may do."),
        ),
    ]
