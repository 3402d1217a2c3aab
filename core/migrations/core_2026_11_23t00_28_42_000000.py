from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T00:28:42:000000"
VERSION = "1.38.0"
DESCRIPTION = "audit pruning: the owner may delete entries only while pruning"

_REFUSE_PG = """
CREATE OR REPLACE FUNCTION xindai_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('xindai.audit_prune', true) = 'on' THEN
        RETURN OLD;  -- retention pruning by the owner role (the app role has no DELETE)
    END IF;
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(raw_step(postgres=_REFUSE_PG))
    return manager
