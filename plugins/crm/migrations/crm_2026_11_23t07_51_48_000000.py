from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T07:51:48:000000"
VERSION = "1.38.0"
DESCRIPTION = "crm: lead, blacklist and assignment-rule indexes lead with tenant_id"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="crm", description=DESCRIPTION)
    for statement in (
        "CREATE INDEX IF NOT EXISTS crm_lead_tenant_name ON crm_lead (tenant_id, name)",
        "CREATE INDEX IF NOT EXISTS crm_lead_tenant_owner ON crm_lead (tenant_id, owner_id)",
        "CREATE INDEX IF NOT EXISTS crm_lead_tenant_stage ON crm_lead (tenant_id, stage)",
        "CREATE INDEX IF NOT EXISTS crm_lead_tenant_credit_code "
        "ON crm_lead (tenant_id, credit_code)",
        # duplicate detection looks customers up by credit code too
        "CREATE INDEX IF NOT EXISTS crm_customer_tenant_credit_code "
        "ON crm_customer (tenant_id, credit_code)",
        "CREATE INDEX IF NOT EXISTS crm_blacklist_lookup "
        "ON crm_blacklist (tenant_id, kind, digest)",
        "CREATE INDEX IF NOT EXISTS crm_assignment_rule_position "
        "ON crm_assignment_rule (tenant_id, position)",
    ):
        manager.add_raw(raw_step(statement))
    return manager
