from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T07:51:28:000000"
VERSION = "1.38.0"
DESCRIPTION = "notification indexes: once per (user, ref), the inbox; expiring documents"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(raw_step(
        "CREATE UNIQUE INDEX IF NOT EXISTS notification_once "
        "ON notification (tenant_id, user_id, ref)"))
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS notification_inbox "
        "ON notification (tenant_id, user_id, read_at, created_at)"))
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS document_expiring ON document (tenant_id, expires_on) "
        "WHERE deleted_at IS NULL AND expires_on IS NOT NULL"))
    return manager
