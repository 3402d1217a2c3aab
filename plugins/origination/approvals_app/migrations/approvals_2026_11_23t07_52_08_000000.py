from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from core.db import raw_step

ID = "2026-11-23T07:52:08:000000"
VERSION = "1.38.0"
DESCRIPTION = "approvals: unique workflow versions; inbox, timeline and deadline indexes"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="approvals", description=DESCRIPTION)
    for statement in (
        "CREATE UNIQUE INDEX IF NOT EXISTS approval_workflow_version "
        "ON approval_workflow (tenant_id, key, version)",
        "CREATE INDEX IF NOT EXISTS approval_workflow_subject "
        "ON approval_workflow (tenant_id, subject, active)",
        "CREATE INDEX IF NOT EXISTS approval_instance_subject "
        "ON approval_instance (tenant_id, subject, subject_id)",
        # the deadline job reads only what falls due
        "CREATE INDEX IF NOT EXISTS approval_instance_due "
        "ON approval_instance (tenant_id, next_due_at) WHERE next_due_at IS NOT NULL",
        # the inbox: a user's and their roles' open tasks
        "CREATE INDEX IF NOT EXISTS approval_task_inbox "
        "ON approval_task (tenant_id, assignee, status)",
        "CREATE INDEX IF NOT EXISTS approval_task_done "
        "ON approval_task (tenant_id, acted_by, acted_at)",
        "CREATE INDEX IF NOT EXISTS approval_task_instance "
        "ON approval_task (tenant_id, instance_id, status)",
        "CREATE INDEX IF NOT EXISTS approval_event_subject "
        "ON approval_event (tenant_id, subject, subject_id, at)",
        "CREATE UNIQUE INDEX IF NOT EXISTS approval_event_seq "
        "ON approval_event (tenant_id, instance_id, seq)",
    ):
        manager.add_raw(raw_step(statement))
    return manager
