"""The servicing plugin's piccolo app: its tables and migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from plugins.servicing.tables import SERVICING_TABLES

APP_CONFIG = AppConfig(
    app_name="servicing",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=SERVICING_TABLES,
    migration_dependencies=["core.piccolo_app"],
    commands=[],
)
