from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T07:52:59:000000"
VERSION = "1.38.0"
DESCRIPTION = "follow-up and task indexes lead with tenant_id"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS crm_followup_by_record "
        "ON crm_followup (tenant_id, entity, record_id, occurred_at)"))
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS crm_task_by_assignee "
        "ON crm_task (tenant_id, assignee_id, status, due_on)"))
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS crm_task_by_record ON crm_task (tenant_id, entity, record_id)"))
    return manager
