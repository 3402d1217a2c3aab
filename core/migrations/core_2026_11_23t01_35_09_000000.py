from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T01:35:09:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox indexes: due messages, handled once, one schedule state per job"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS outbox_message_due ON outbox_message (tenant_id, available_at)"
        " WHERE finished_at IS NULL AND dead_at IS NULL"))
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS outbox_message_recent ON outbox_message (tenant_id, created_at)"))
    manager.add_raw(raw_step(
        "CREATE UNIQUE INDEX IF NOT EXISTS processed_message_once "
        "ON processed_message (tenant_id, message_id, handler)"))
    manager.add_raw(raw_step(
        "CREATE UNIQUE INDEX IF NOT EXISTS schedule_state_job ON schedule_state (tenant_id, job)"))
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS webhook_delivery_recent ON webhook_delivery (tenant_id, at)"))
    return manager
