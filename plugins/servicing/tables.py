"""Servicing tables: products, loans with their frozen schedules, money movements, and the
double-entry ledger. Money is integer 分 (BigInt), rates are decimal strings (percent), so
nothing passes through float on either engine."""

from __future__ import annotations

import uuid

from piccolo.columns import JSON, UUID, BigInt, Boolean, Date, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

from core.tables import TenantOwned, utcnow


class LoanProduct(TenantOwned, Table, tablename="loan_product"):
    """A lender's loan product: ranges, method, conventions and rules (`config`, validated by
    plugins.servicing.products). Loans copy what they need at disbursement."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    code = Varchar(length=40)
    name = Varchar(length=200)
    active = Boolean(default=True)
    config = JSON(default={})
    version = Integer(default=1)
    created_at = Timestamptz(default=utcnow)
    updated_at = Timestamptz(default=utcnow)
    # unique ('tenant_id', 'code'): index loan_product_code (see migrations)


class Loan(TenantOwned, Table, tablename="loan"):
    """A disbursed loan. `terms` is the schedule request frozen at disbursement; balances
    live on the installments and always equal the ledger's postings for the loan."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    number = Varchar(length=40)
    customer_id = UUID()
    product_id = UUID()
    product_code = Varchar(length=40)
    application_id = UUID(null=True, default=None)  # the approved application (进件), if any
    status = Varchar(length=20, default="active")  # active | settled | written_off
    principal = BigInt()  # 分
    annual_rate = Varchar(length=20)  # percent, e.g. "12" or "4.9"
    periods = Integer()
    disbursed_on = Date()
    maturity_on = Date()
    terms = JSON(default={})
    schedule_version = Integer(default=1)
    last_closed_on = Date(null=True, default=None)  # the last business date COB closed
    # Accrual (计提) of the running period, cached so the nightly close is row-local: the
    # installment whose period runs (accrual_n, from accrual_start to accrual_due), its
    # interest and fees, and what the completed periods before it charged.
    accrual_n = Integer(default=1)
    accrual_start = Date(null=True, default=None)
    accrual_due = Date(null=True, default=None)  # null: past the last period
    accrual_interest = BigInt(default=0)
    accrual_fees = BigInt(default=0)
    accrual_base_interest = BigInt(default=0)
    accrual_base_fees = BigInt(default=0)
    interest_accrued = BigInt(default=0)  # recognised as income so far (cumulative)
    fees_accrued = BigInt(default=0)
    interest_receivable = BigInt(default=0)  # = the loan's balance of 1132 应收利息
    fees_receivable = BigInt(default=0)  # = the loan's balance of 1221 其他应收款
    # Penalty terms frozen at disbursement, as integers for set-based SQL on both engines:
    # annual rates in millionths (10.8% -> 108000), the day basis (0: actual/actual).
    penalty_rate_e6 = BigInt(default=0)
    compound_rate_e6 = BigInt(default=0)
    day_basis = Integer(default=360)
    penalty_grace_days = Integer(default=0)
    days_past_due = Integer(default=0)
    bucket = Varchar(length=8, default="M0")
    classification = Varchar(length=16, default="normal")
    classification_override = Varchar(length=16, null=True, default=None)
    classification_reason = Text(null=True, default=None)
    credit_balance = BigInt(default=0)  # overpayment kept for the customer
    settled_on = Date(null=True, default=None)
    written_off_on = Date(null=True, default=None)
    owner_id = UUID(null=True, default=None)
    org_unit_id = UUID(null=True, default=None)
    version = Integer(default=1)
    created_at = Timestamptz(default=utcnow)
    created_by = Varchar(length=64, null=True, default=None)
    # unique ('tenant_id', 'number'): index loan_number (see migrations)


class LoanInstallment(TenantOwned, Table, tablename="loan_installment"):
    """One period of a loan's schedule version: what is due and what was paid of it."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    loan_id = UUID()
    schedule_version = Integer(default=1)
    n = Integer()
    due_on = Date()
    principal = BigInt()
    interest = BigInt()
    fees = BigInt(default=0)
    penalty = BigInt(default=0)
    compound = BigInt(default=0)
    principal_paid = BigInt(default=0)
    interest_paid = BigInt(default=0)
    fees_paid = BigInt(default=0)
    penalty_paid = BigInt(default=0)
    compound_paid = BigInt(default=0)
    settled_on = Date(null=True, default=None)
    # penalty and compound interest accrued exactly, in millionths of 分; `penalty` and
    # `compound` are these rounded, so daily rounding never adds up to a visible error
    penalty_e6 = BigInt(default=0)
    compound_e6 = BigInt(default=0)
    # unique ('tenant_id', 'loan_id', 'schedule_version', 'n'): index loan_installment_n


class LoanTransaction(TenantOwned, Table, tablename="loan_transaction"):
    """A money movement on a loan: disbursement, repayment, reversal, write-off, recovery."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    loan_id = UUID()
    kind = Varchar(length=20)
    amount = BigInt()  # 分, positive
    value_date = Date()
    channel = Varchar(length=20, null=True, default=None)  # cash | transfer
    reference = Varchar(length=100, null=True, default=None)
    allocation = JSON(default={})
    reverses = UUID(null=True, default=None)
    reversed_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=utcnow)
    created_by = Varchar(length=64, null=True, default=None)


class GlAccount(TenantOwned, Table, tablename="gl_account"):
    """An account of the tenant's chart of accounts (会计科目)."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    code = Varchar(length=20)
    name = Varchar(length=100)
    kind = Varchar(length=12)  # asset | liability | equity | income | expense
    # unique ('tenant_id', 'code'): index gl_account_code


class JournalEntry(TenantOwned, Table, tablename="journal_entry"):
    """A balanced journal entry; `key` is unique per tenant, so a posting is made once."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    key = Varchar(length=160)
    posted_on = Date()
    loan_id = UUID(null=True, default=None)
    transaction_id = UUID(null=True, default=None)
    memo = Varchar(length=200, default="")
    created_at = Timestamptz(default=utcnow)
    # unique ('tenant_id', 'key'): index journal_entry_key


class Posting(TenantOwned, Table, tablename="posting"):
    """One line of a journal entry: a debit or a credit to an account, for a loan."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    entry_id = UUID()
    account_code = Varchar(length=20)
    loan_id = UUID(null=True, default=None)
    debit = BigInt(default=0)
    credit = BigInt(default=0)


class LoanClassification(TenantOwned, Table, tablename="loan_classification"):
    """A change of a loan's five-category classification (五级分类): by the nightly close
    (the floor from days past due) or by a person (an override, with the reason)."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    loan_id = UUID()
    changed_on = Date()
    old = Varchar(length=16, null=True, default=None)
    new = Varchar(length=16)
    source = Varchar(length=10)  # cob | manual
    reason = Text(null=True, default=None)
    days_past_due = Integer(default=0)
    created_at = Timestamptz(default=utcnow)
    created_by = Varchar(length=64, null=True, default=None)


class CobRun(TenantOwned, Table, tablename="cob_run"):
    """One close of business (日终) of a tenant's business date: its progress and outcome."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    business_date = Date()
    status = Varchar(length=12, default="running")  # running | done | failed
    loans = Integer(default=0)  # loans closed by this run (catch-up days included)
    chunks = Integer(default=0)
    accrued = BigInt(default=0)  # 分 of interest and fees accrued
    penalty = BigInt(default=0)  # 分 of penalty and compound interest charged
    events = Integer(default=0)
    error = Text(null=True, default=None)
    started_at = Timestamptz(default=utcnow)
    finished_at = Timestamptz(null=True, default=None)
    started_by = Varchar(length=64, null=True, default=None)
    # unique ('tenant_id', 'business_date'): index cob_run_date


SERVICING_TABLES: list[type[Table]] = [
    LoanProduct, Loan, LoanInstallment, LoanTransaction, GlAccount, JournalEntry, Posting,
    LoanClassification, CobRun,
]
