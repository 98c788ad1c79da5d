from django.db import migrations

# The audit trail stays append-only, except an erasure (GDPR Art. 17): the text of an entry may
# have an address replaced by its erasure placeholder, and nothing else may change.
PLACEHOLDER = "%@erased.invalid%"

FORBID = f"""
CREATE OR REPLACE FUNCTION compliance_audit_erase_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
    END IF;
    IF (to_jsonb(NEW) - 'object_repr' - 'changes')
           IS DISTINCT FROM (to_jsonb(OLD) - 'object_repr' - 'changes')
       OR (NEW.object_repr IS DISTINCT FROM OLD.object_repr
           AND NEW.object_repr NOT LIKE '{PLACEHOLDER}')
       OR (NEW.changes IS DISTINCT FROM OLD.changes
           AND NEW.changes::text NOT LIKE '{PLACEHOLDER}') THEN
        RAISE EXCEPTION '% is append-only: only erasing an address is allowed', TG_TABLE_NAME;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS compliance_auditevent_append_only ON compliance_auditevent;
CREATE TRIGGER compliance_auditevent_append_only
    BEFORE UPDATE OR DELETE ON compliance_auditevent
    FOR EACH ROW EXECUTE FUNCTION compliance_audit_erase_only();
"""

BACK = """
DROP TRIGGER IF EXISTS compliance_auditevent_append_only ON compliance_auditevent;
CREATE TRIGGER compliance_auditevent_append_only
    BEFORE UPDATE OR DELETE ON compliance_auditevent
    FOR EACH ROW EXECUTE FUNCTION compliance_forbid_change();
DROP FUNCTION IF EXISTS compliance_audit_erase_only();
"""


def allow_erasure(apps, schema_editor):
    # SQLite, the embedded default, relies on the model's own refusal.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORBID, params=None)


def forbid_all(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACK, params=None)


class Migration(migrations.Migration):
    dependencies = [("compliance", "0012_audit_people_and_access")]

    operations = [migrations.RunPython(allow_erasure, forbid_all)]
