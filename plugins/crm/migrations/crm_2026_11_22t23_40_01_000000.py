from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar

from core.db import raw_step

ID = "2026-11-22T23:40:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer name index leads with tenant_id"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)
    manager.add_raw(
        raw_step("CREATE INDEX IF NOT EXISTS crm_customer_tenant_name ON crm_customer (tenant_id, name)")
    )
    manager.alter_column(
        table_class_name="Customer",
        tablename="crm_customer",
        column_name="name",
        db_column_name="name",
        params={"index": False},
        old_params={"index": True},
        column_class=Varchar,
        old_column_class=Varchar,
        schema=None,
    )
    return manager
