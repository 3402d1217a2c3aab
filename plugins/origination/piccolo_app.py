"""The origination plugin's piccolo app: applications, credit checks, scorecards."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from plugins.origination.tables import ORIGINATION_TABLES

APP_CONFIG = AppConfig(
    app_name="origination",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=ORIGINATION_TABLES,
    migration_dependencies=["core.piccolo_app"],
    commands=[],
)
