from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T02:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "webhook delivery log indexes: per webhook by time, per delivery id"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS webhook_delivery_by_webhook "
        "ON webhook_delivery (tenant_id, webhook_id, at)"))
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS webhook_delivery_by_message "
        "ON webhook_delivery (tenant_id, message_id)"))
    return manager
