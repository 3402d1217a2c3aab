from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T07:51:16:000000"
VERSION = "1.38.0"
DESCRIPTION = "servicing: an application is disbursed at most once"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="servicing", description=DESCRIPTION)
    manager.add_raw(raw_step(
        "CREATE UNIQUE INDEX IF NOT EXISTS loan_application ON loan (tenant_id, application_id) "
        "WHERE application_id IS NOT NULL"))
    return manager
