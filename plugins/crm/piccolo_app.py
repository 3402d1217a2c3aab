from pathlib import Path

from piccolo.conf.apps import AppConfig

from plugins.crm.activity_tables import ACTIVITY_TABLES
from plugins.crm.lead_tables import LEAD_TABLES
from plugins.crm.tables import Customer

APP_CONFIG = AppConfig(
    app_name="crm",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[Customer, *LEAD_TABLES, *ACTIVITY_TABLES],
    migration_dependencies=["core.piccolo_app"],
    commands=[],
)
