from django.db import migrations

# PostgreSQL refuses UPDATE and DELETE on the audit table for every role that does not first drop
# the trigger. TRUNCATE and DROP are the table owner's, like dropping the trigger: production runs
# the application under a role that does not own its tables (README). SQLite has no such
# enforcement and relies on the hash chain alone.
APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION scrapannot_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'scrapannot_auditevent is append-only (' || TG_OP || ' refused)',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER scrapannot_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON scrapannot_auditevent
    FOR EACH ROW EXECUTE FUNCTION scrapannot_audit_append_only();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS scrapannot_audit_no_update_delete ON scrapannot_auditevent;
DROP FUNCTION IF EXISTS scrapannot_audit_append_only();
"""

ROLES = ["annotator", "senior inspector", "admin", "plant system"]


def forwards_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL)


def backwards_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("scrapannot", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(forwards_trigger, backwards_trigger),
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
