from django.db import migrations

# The history stays append-only, except an erasure (GDPR Art. 17): a note may have an address
# replaced by its erasure placeholder, and nothing else may change.
PLACEHOLDER = "%@erased.invalid%"

FORBID = f"""
CREATE OR REPLACE FUNCTION suppression_event_erase_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
    END IF;
    IF (to_jsonb(NEW) - 'note' - 'evidence_note')
           IS DISTINCT FROM (to_jsonb(OLD) - 'note' - 'evidence_note')
       OR (NEW.note IS DISTINCT FROM OLD.note AND NEW.note NOT LIKE '{PLACEHOLDER}')
       OR (NEW.evidence_note IS DISTINCT FROM OLD.evidence_note
           AND NEW.evidence_note NOT LIKE '{PLACEHOLDER}') THEN
        RAISE EXCEPTION '% is append-only: only erasing an address is allowed', TG_TABLE_NAME;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS suppression_event_append_only ON suppression_suppressionevent;
CREATE TRIGGER suppression_event_append_only
    BEFORE UPDATE OR DELETE ON suppression_suppressionevent
    FOR EACH ROW EXECUTE FUNCTION suppression_event_erase_only();
"""

BACK = """
DROP TRIGGER IF EXISTS suppression_event_append_only ON suppression_suppressionevent;
CREATE TRIGGER suppression_event_append_only
    BEFORE UPDATE OR DELETE ON suppression_suppressionevent
    FOR EACH ROW EXECUTE FUNCTION compliance_forbid_change();
DROP FUNCTION IF EXISTS suppression_event_erase_only();
"""


def allow_erasure(apps, schema_editor):
    # SQLite, the embedded default, relies on the model's own refusal.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORBID, params=None)


def forbid_all(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACK, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("suppression", "0003_leaner_indexes"),
        ("compliance", "0013_audit_erasure"),
    ]

    operations = [migrations.RunPython(allow_erasure, forbid_all)]
