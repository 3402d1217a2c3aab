"""Follow-ups (跟进记录) and tasks (任务): purpose-built tables, written by
plugins.crm.activity through tenant_scope with audit entries and events.

They attach to any registry record (`entity` + `record_id`: a customer, a lead) and follow
its access, like core documents: whoever may see the record sees its follow-ups and tasks.
What people write in them (the content of a call, the next step, a task's note) is
personal data: sealed with the tenant's key (AES-256-GCM, the row id bound in), never
stored in clear. That includes a task's title (a follow-up's next step becomes one), so
reminders say "a task is due" and link to it rather than quoting it.
"""

from piccolo.columns import UUID, Date, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

from core.tables import TenantOwned, utcnow


class FollowUp(TenantOwned, Table, tablename="crm_followup"):
    id = UUID(primary_key=True)
    entity = Varchar(length=63)
    record_id = UUID()
    kind = Varchar(length=20)  # call | visit | wechat | note
    occurred_at = Timestamptz()
    outcome = Varchar(length=30, null=True, default=None)
    content_sealed = Text()
    next_step_sealed = Text(null=True, default=None)
    next_follow_up_on = Date(null=True, default=None)
    task_id = UUID(null=True, default=None)  # the task its next step created
    created_by = Varchar(length=64, null=True, default=None)
    created_at = Timestamptz(default=utcnow)
    # index crm_followup_by_record (tenant_id, entity, record_id, occurred_at)


class Task(TenantOwned, Table, tablename="crm_task"):
    id = UUID(primary_key=True)
    title_sealed = Text()
    note_sealed = Text(null=True, default=None)
    due_on = Date()
    assignee_id = UUID()
    status = Varchar(length=20, default="open")  # open | done | cancelled
    entity = Varchar(length=63, null=True, default=None)
    record_id = UUID(null=True, default=None)
    followup_id = UUID(null=True, default=None)
    version = Integer(default=1)
    created_by = Varchar(length=64, null=True, default=None)
    created_at = Timestamptz(default=utcnow)
    updated_at = Timestamptz(default=utcnow)
    done_at = Timestamptz(null=True, default=None)
    done_by = Varchar(length=64, null=True, default=None)
    # index crm_task_by_assignee (tenant_id, assignee_id, status, due_on)
    # index crm_task_by_record (tenant_id, entity, record_id)


ACTIVITY_TABLES: list[type[Table]] = [FollowUp, Task]
