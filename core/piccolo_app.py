"""The kernel's piccolo app: its tables and migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from core.tables import KERNEL_TABLES

APP_CONFIG = AppConfig(
    app_name="core",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=KERNEL_TABLES,
    migration_dependencies=[],
    commands=[],
)
