"""The origination plugin's tables for applications (进件), credit checks and scorecards.

`orig_application` is a registry entity (RecordColumns: owner and org-unit object rules,
custom fields, versioned writes through core.records). The others are purpose-built:
written inside `tenant_scope` with an audit entry and an event, always filtered by tenant.
"""

from __future__ import annotations

import uuid

from piccolo.columns import JSON, UUID, BigInt, Integer, Timestamptz, Varchar
from piccolo.table import Table

from core.tables import RecordColumns, TenantOwned, utcnow


class Application(RecordColumns, Table, tablename="orig_application"):
    """进件: a customer's request for a loan product; see plugins.origination.entities."""

    number = Varchar(length=30, null=True, default=None)
    customer_id = UUID(null=True, default=None)
    product = Varchar(length=40, null=True, default=None)
    amount = BigInt(null=True, default=None)  # fen
    periods = Integer(null=True, default=None)
    annual_rate = Varchar(length=20, null=True, default=None)
    purpose = Varchar(length=200, null=True, default=None)
    region = Varchar(length=12, null=True, default=None)
    consent_ref = Varchar(length=64, null=True, default=None)
    status = Varchar(length=20, null=True, default=None)
    grade = Varchar(length=8, null=True, default=None)
    score = Integer(null=True, default=None)
    credit_report = Varchar(length=64, null=True, default=None)  # orig_credit_check id
    submitted_by = Varchar(length=64, null=True, default=None)
    submitted_at = Timestamptz(null=True, default=None)
    decided_by = Varchar(length=64, null=True, default=None)


class ApplicationHistory(TenantOwned, Table, tablename="orig_application_history"):
    """One status change of an application: who, when, from and to, with a comment."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    application_id = UUID()
    at = Timestamptz(default=utcnow)
    actor = Varchar(length=64, null=True, default=None)  # user id, or None for the system
    actor_name = Varchar(length=100, null=True, default=None)
    from_status = Varchar(length=20, null=True, default=None)
    to_status = Varchar(length=20)
    comment = Varchar(length=1000, null=True, default=None)


class CreditCheck(TenantOwned, Table, tablename="orig_credit_check"):
    """One credit-bureau query: the summary figures, the report document, the consent."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    application_id = UUID()
    customer_id = UUID()
    bureau = Varchar(length=40)
    report_ref = Varchar(length=64)  # the bureau's own report number
    document_id = UUID(null=True, default=None)  # core.documents, kind credit_report
    consent_ref = Varchar(length=64)
    summary = JSON(default={})
    queried_at = Timestamptz(default=utcnow)
    queried_by = Varchar(length=64, null=True, default=None)


class ApplicationScore(TenantOwned, Table, tablename="orig_application_score"):
    """A scoring of an application at submission: the scorecard version and the breakdown
    (variable, value, bin, points) that risk staff read on the application page."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    application_id = UUID()
    scorecard = Varchar(length=40)
    scorecard_version = Integer()
    score = Integer()
    grade = Varchar(length=8)
    breakdown = JSON(default=[])
    scored_at = Timestamptz(default=utcnow)


class Scorecard(TenantOwned, Table, tablename="orig_scorecard"):
    """One version of a scorecard; saving makes a new version, applications keep theirs."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    code = Varchar(length=40)
    version = Integer()
    definition = JSON(default={})
    created_at = Timestamptz(default=utcnow)
    created_by = Varchar(length=64, null=True, default=None)


class Requirement(TenantOwned, Table, tablename="orig_requirement"):
    """What an application for one product needs before submission: document kinds and
    custom-field keys. Product `*` is the default for products without a row."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    product = Varchar(length=40)
    documents = JSON(default=[])
    fields = JSON(default=[])
    updated_at = Timestamptz(default=utcnow)


ORIGINATION_TABLES = [Application, ApplicationHistory, CreditCheck, ApplicationScore,
                      Scorecard, Requirement]
