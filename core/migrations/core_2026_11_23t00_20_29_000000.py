from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T00:20:29:000000"
VERSION = "1.38.0"
DESCRIPTION = "audit log is append-only: unique sequence, triggers refuse UPDATE and DELETE"

_REFUSE_PG = """
CREATE OR REPLACE FUNCTION xindai_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(raw_step(
        "CREATE UNIQUE INDEX IF NOT EXISTS audit_entry_seq ON audit_entry (tenant_id, seq)"))
    manager.add_raw(raw_step(
        "CREATE UNIQUE INDEX IF NOT EXISTS audit_head_tenant ON audit_head (tenant_id)"))
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS audit_entry_recent ON audit_entry (tenant_id, at)"))
    manager.add_raw(raw_step(postgres=_REFUSE_PG))
    manager.add_raw(raw_step(
        postgres="CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry "
                 "FOR EACH ROW EXECUTE FUNCTION xindai_audit_append_only()",
        sqlite="CREATE TRIGGER IF NOT EXISTS audit_entry_no_update BEFORE UPDATE ON audit_entry "
               "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ))
    manager.add_raw(raw_step(
        postgres="CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry "
                 "FOR EACH STATEMENT EXECUTE FUNCTION xindai_audit_append_only()",
        sqlite="CREATE TRIGGER IF NOT EXISTS audit_entry_no_delete BEFORE DELETE ON audit_entry "
               "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ))
    return manager
