"""The contracts plugin's piccolo app: its tables and migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from plugins.contracts.tables import CONTRACT_TABLES

APP_CONFIG = AppConfig(
    app_name="contracts",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=CONTRACT_TABLES,
    migration_dependencies=["core.piccolo_app"],
    commands=[],
)
