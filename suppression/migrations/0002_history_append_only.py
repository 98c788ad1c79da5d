from django.db import migrations

FORBID = """
CREATE TRIGGER suppression_event_append_only
    BEFORE UPDATE OR DELETE ON suppression_suppressionevent
    FOR EACH ROW EXECUTE FUNCTION compliance_forbid_change();
"""
ALLOW = "DROP TRIGGER IF EXISTS suppression_event_append_only ON suppression_suppressionevent;"


def forbid_changes(apps, schema_editor):
    # The history is evidence: the database refuses to rewrite it (compliance.0003's function).
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORBID, params=None)


def allow_changes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ALLOW, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("suppression", "0001_initial"),
        ("compliance", "0003_audit_append_only"),
    ]

    operations = [migrations.RunPython(forbid_changes, allow_changes)]
