from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar

from core.db import raw_step

ID = "2026-11-22T23:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "blind index lookups lead with tenant_id"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)
    manager.add_raw(
        raw_step(
            "CREATE INDEX IF NOT EXISTS blind_index_lookup "
            "ON blind_index (tenant_id, entity, field, digest)"
        )
    )
    manager.alter_column(
        table_class_name="BlindIndex",
        tablename="blind_index",
        column_name="digest",
        db_column_name="digest",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )
    return manager
