"""The staff groups: compliance officer, compliance analyst and support agent, with the
permissions compliance/roles.py gives each. Permissions are made only after the last migration
of a run, so those of the apps migrated so far are made here first; the post_migrate receiver
(compliance.roles.sync_after_migrate) adds those of apps migrated later."""

from django.db import migrations


def create_groups(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    from compliance import roles

    using = schema_editor.connection.alias
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=using)
        app_config.models_module = None
    roles.sync_groups(apps=apps, using=using)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("compliance", "0016_staff_tenants"),
    ]

    operations = [
        # Backwards the groups stay: deleting them would drop every member's role with them.
        migrations.RunPython(create_groups, migrations.RunPython.noop),
    ]
