from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T07:53:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "contracts: unique numbers, template versions, callback nonces; lookups"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="contracts", description=DESCRIPTION)
    for statement in (
        "CREATE UNIQUE INDEX IF NOT EXISTS contract_number ON contract (tenant_id, number)",
        "CREATE INDEX IF NOT EXISTS contract_application ON contract (tenant_id, application_id)",
        "CREATE INDEX IF NOT EXISTS contract_status ON contract (tenant_id, status, created_at)",
        "CREATE INDEX IF NOT EXISTS contract_flow ON contract (tenant_id, flow_id)",
        "CREATE UNIQUE INDEX IF NOT EXISTS contract_template_version "
        "ON contract_template (tenant_id, product, version)",
        "CREATE INDEX IF NOT EXISTS contract_event_contract "
        "ON contract_event (tenant_id, contract_id, at)",
        "CREATE UNIQUE INDEX IF NOT EXISTS contract_callback_nonce "
        "ON contract_callback (tenant_id, nonce)",
        "CREATE UNIQUE INDEX IF NOT EXISTS contract_approval_application "
        "ON contract_approval (tenant_id, application_id)",
    ):
        manager.add_raw(raw_step(statement))
    return manager
