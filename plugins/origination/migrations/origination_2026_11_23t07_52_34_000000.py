from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T07:52:34:000000"
VERSION = "1.38.0"
DESCRIPTION = "origination: unique numbers and codes, indexes leading with tenant_id"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="origination", description=DESCRIPTION)
    for statement in (
        "CREATE UNIQUE INDEX IF NOT EXISTS orig_application_number "
        "ON orig_application (tenant_id, number)",
        "CREATE INDEX IF NOT EXISTS orig_application_status "
        "ON orig_application (tenant_id, status, created_at)",
        "CREATE INDEX IF NOT EXISTS orig_application_customer "
        "ON orig_application (tenant_id, customer_id)",
        "CREATE INDEX IF NOT EXISTS orig_application_history_app "
        "ON orig_application_history (tenant_id, application_id, at)",
        "CREATE INDEX IF NOT EXISTS orig_credit_check_app "
        "ON orig_credit_check (tenant_id, application_id, queried_at)",
        "CREATE INDEX IF NOT EXISTS orig_application_score_app "
        "ON orig_application_score (tenant_id, application_id, scored_at)",
        "CREATE UNIQUE INDEX IF NOT EXISTS orig_scorecard_version "
        "ON orig_scorecard (tenant_id, code, version)",
        "CREATE UNIQUE INDEX IF NOT EXISTS orig_requirement_product "
        "ON orig_requirement (tenant_id, product)",
    ):
        manager.add_raw(raw_step(statement))
    return manager
