from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import UUID
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-22T23:45:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer owner and organisation unit"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="crm", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Customer",
        tablename="crm_customer",
        column_name="org_unit_id",
        db_column_name="org_unit_id",
        column_class_name="UUID",
        column_class=UUID,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="Customer",
        tablename="crm_customer",
        column_name="owner_id",
        db_column_name="owner_id",
        column_class_name="UUID",
        column_class=UUID,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
