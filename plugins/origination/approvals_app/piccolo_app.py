"""The approvals piccolo app (origination's approval workflows): tables and migrations."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from plugins.origination.approvals_app.tables import APPROVAL_TABLES

APP_CONFIG = AppConfig(
    app_name="approvals",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=APPROVAL_TABLES,
    migration_dependencies=["core.piccolo_app"],
    commands=[],
)
