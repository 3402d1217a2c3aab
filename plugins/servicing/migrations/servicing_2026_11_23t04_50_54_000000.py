from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T04:50:54:000000"
VERSION = "1.38.0"
DESCRIPTION = "servicing: indexes for the nightly close and classification history"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="servicing", description=DESCRIPTION)
    for statement in (
        "CREATE UNIQUE INDEX IF NOT EXISTS cob_run_date ON cob_run (tenant_id, business_date)",
        "CREATE INDEX IF NOT EXISTS loan_classification_loan "
        "ON loan_classification (tenant_id, loan_id, changed_on)",
        # what is due and unpaid: small in a healthy book, read by every close
        "CREATE INDEX IF NOT EXISTS loan_installment_open ON loan_installment "
        "(tenant_id, loan_id, due_on) WHERE settled_on IS NULL",
        # the nightly close rewrites every active loan row: no index on what it changes,
        # so PostgreSQL can update in place (HOT) without touching the indexes
        "DROP INDEX IF EXISTS loan_open",
        "CREATE INDEX IF NOT EXISTS loan_status ON loan (tenant_id, status)",
        # the trial balance and account statements read postings by entry or by loan
        "DROP INDEX IF EXISTS posting_account",
    ):
        manager.add_raw(raw_step(statement))
    # room on each page for tonight's version of a row next to last night's
    manager.add_raw(raw_step(postgres="ALTER TABLE loan SET (fillfactor = 70)"))
    manager.add_raw(raw_step(postgres="ALTER TABLE loan_installment SET (fillfactor = 90)"))
    return manager
