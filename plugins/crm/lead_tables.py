"""Tables of leads and what surrounds their capture: the blacklist and the assignment rules.

Secret lead fields (resident ID, mobile) have no column: they are sealed in `sealed` with a
blind index (core.records). Blacklist entries keep no clear value at all: only the keyed
digest and a masked form. Indexes lead with tenant_id (see the migrations).
"""

from __future__ import annotations

import uuid

from piccolo.columns import JSON, UUID, Boolean, Integer, Timestamptz, Varchar
from piccolo.table import Table

from core.tables import RecordColumns, TenantOwned, utcnow


class Lead(RecordColumns, Table, tablename="crm_lead"):
    kind = Varchar(length=20, default="individual")  # individual | company
    name = Varchar(length=200)
    credit_code = Varchar(length=18, null=True, default=None)
    region = Varchar(length=6, null=True, default=None)
    product_interest = Varchar(length=40, null=True, default=None)
    source = Varchar(length=20, null=True, default=None)
    channel = Varchar(length=60, null=True, default=None)
    stage = Varchar(length=20, default="new")
    suspected_duplicate = Boolean(default=False)
    last_activity_at = Timestamptz(null=True, default=None)
    pooled_at = Timestamptz(null=True, default=None)
    converted_customer_id = UUID(null=True, default=None)
    merged_into_id = UUID(null=True, default=None)


class BlacklistEntry(TenantOwned, Table, tablename="crm_blacklist"):
    """One blocked identifier (黑名单): kind + keyed digest + masked form, never the value."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    kind = Varchar(length=20)  # resident_id | mobile | credit_code
    digest = Varchar(length=64)
    masked = Varchar(length=40)
    reason = Varchar(length=300)
    created_at = Timestamptz(default=utcnow)
    created_by = Varchar(length=63, null=True, default=None)
    removed_at = Timestamptz(null=True, default=None)
    removed_by = Varchar(length=63, null=True, default=None)


class AssignmentRule(TenantOwned, Table, tablename="crm_assignment_rule"):
    """An ordered rule: conditions (empty = any) and an action choosing the lead's owner."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    position = Integer(default=0)
    name = Varchar(length=100)
    active = Boolean(default=True)
    region_prefix = Varchar(length=6, null=True, default=None)
    product_interest = Varchar(length=40, null=True, default=None)
    source = Varchar(length=20, null=True, default=None)
    action = Varchar(length=20)  # officer | round_robin | least_loaded
    officers = JSON(default=[])  # usernames
    org_unit = Varchar(length=40, null=True, default=None)  # unit code: its officers
    cursor = Integer(default=0)  # round robin: how many leads it has handed out
    updated_at = Timestamptz(default=utcnow)


LEAD_TABLES: list[type[Table]] = [Lead, BlacklistEntry, AssignmentRule]
