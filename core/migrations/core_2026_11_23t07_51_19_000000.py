from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T07:51:19:000000"
VERSION = "1.38.0"
DESCRIPTION = "import_job index: a tenant's imports by time"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(raw_step(
        "CREATE INDEX IF NOT EXISTS import_job_by_time ON import_job (tenant_id, created_at)"))
    return manager
