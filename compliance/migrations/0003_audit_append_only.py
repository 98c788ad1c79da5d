from django.db import migrations

FORBID = """
CREATE OR REPLACE FUNCTION compliance_forbid_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER compliance_auditevent_append_only
    BEFORE UPDATE OR DELETE ON compliance_auditevent
    FOR EACH ROW EXECUTE FUNCTION compliance_forbid_change();
"""

ALLOW = """
DROP TRIGGER IF EXISTS compliance_auditevent_append_only ON compliance_auditevent;
"""


def forbid_changes(apps, schema_editor):
    # The database refuses UPDATE and DELETE too, so no code path (or psql session) can rewrite
    # the trail. SQLite, the embedded default, relies on the model's own refusal.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORBID, params=None)


def allow_changes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ALLOW)


class Migration(migrations.Migration):
    dependencies = [("compliance", "0002_default_tenant")]

    operations = [migrations.RunPython(forbid_changes, allow_changes)]
