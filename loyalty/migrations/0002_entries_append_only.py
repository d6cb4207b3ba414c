from django.db import migrations

# Entries are the books: nothing edits or deletes them, mistakes are reversed by new entries.
APPEND_ONLY = """
CREATE FUNCTION loyalty_refuse_entry_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are append-only: % on % refused (reverse the entry instead)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER loyalty_pointsentry_append_only
    BEFORE UPDATE OR DELETE ON loyalty_pointsentry
    FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_entry_change();
CREATE TRIGGER loyalty_pointsallocation_append_only
    BEFORE UPDATE OR DELETE ON loyalty_pointsallocation
    FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_entry_change();
"""

DROP = """
DROP TRIGGER loyalty_pointsallocation_append_only ON loyalty_pointsallocation;
DROP TRIGGER loyalty_pointsentry_append_only ON loyalty_pointsentry;
DROP FUNCTION loyalty_refuse_entry_change();
"""


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0001_initial")]

    operations = [migrations.RunSQL(APPEND_ONLY, DROP)]
