from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T02:45:23:000000"
VERSION = "1.38.0"
DESCRIPTION = "servicing: unique codes, numbers, installments and ledger keys"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="servicing", description=DESCRIPTION)
    for statement in (
        "CREATE UNIQUE INDEX IF NOT EXISTS loan_product_code ON loan_product (tenant_id, code)",
        "CREATE UNIQUE INDEX IF NOT EXISTS loan_number ON loan (tenant_id, number)",
        "CREATE INDEX IF NOT EXISTS loan_customer ON loan (tenant_id, customer_id)",
        "CREATE INDEX IF NOT EXISTS loan_open ON loan (tenant_id, status, last_closed_on)",
        "CREATE UNIQUE INDEX IF NOT EXISTS loan_installment_n "
        "ON loan_installment (tenant_id, loan_id, schedule_version, n)",
        "CREATE INDEX IF NOT EXISTS loan_installment_due ON loan_installment (tenant_id, due_on)",
        "CREATE INDEX IF NOT EXISTS loan_transaction_loan "
        "ON loan_transaction (tenant_id, loan_id, value_date)",
        "CREATE UNIQUE INDEX IF NOT EXISTS gl_account_code ON gl_account (tenant_id, code)",
        "CREATE UNIQUE INDEX IF NOT EXISTS journal_entry_key ON journal_entry (tenant_id, key)",
        "CREATE INDEX IF NOT EXISTS posting_entry ON posting (tenant_id, entry_id)",
        "CREATE INDEX IF NOT EXISTS posting_account ON posting (tenant_id, account_code)",
        "CREATE INDEX IF NOT EXISTS posting_loan ON posting (tenant_id, loan_id)",
    ):
        manager.add_raw(raw_step(statement))
    return manager
