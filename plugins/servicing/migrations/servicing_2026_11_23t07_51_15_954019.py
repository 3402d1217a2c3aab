from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import UUID
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-23T07:51:15:954019"
VERSION = "1.38.0"
DESCRIPTION = "servicing: a loan remembers the application it was disbursed for"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="servicing", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Loan",
        tablename="loan",
        column_name="application_id",
        db_column_name="application_id",
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
