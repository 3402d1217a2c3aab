"""Kernel tables. Every tenant-owned table carries `tenant_id` (RLS on PostgreSQL).

`TenantOwned` is the mixin for any table whose rows belong to one tenant; `RecordColumns`
adds what the one write path needs for registry entities (custom fields, sealed secrets,
masked forms, soft delete, optimistic version).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from piccolo.columns import (
    JSON,
    UUID,
    BigInt,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.table import Table


def utcnow() -> datetime:
    return datetime.now(UTC)


class Tenant(Table, tablename="tenant"):
    """A lender using xindai. Not tenant-owned itself: it is the owner."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    slug = Varchar(length=63, unique=True)
    name = Varchar(length=200)
    status = Varchar(length=20, default="active")  # active | suspended
    locale = Varchar(length=10, default="zh-CN")
    timezone = Varchar(length=64, default="Asia/Shanghai")
    business_date = Date()
    plugins = JSON(default=[])  # enabled plugin names
    settings = JSON(default={})
    created_at = Timestamptz(default=utcnow)


class TenantOwned:
    """Mixin: the row belongs to one tenant; RLS and the app filter both key on this."""

    tenant_id = ForeignKey(references=Tenant, on_delete=OnDelete.restrict, null=False, index=True)


class RecordColumns(TenantOwned):
    """Mixin for registry entities stored through the one write path."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    custom = JSON(default={})  # tenant custom fields that are not secret
    sealed = JSON(default={})  # secret fields: field -> AES-256-GCM ciphertext (base64)
    masked = JSON(default={})  # secret fields: field -> masked form for display
    version = Integer(default=1)
    created_at = Timestamptz(default=utcnow)
    updated_at = Timestamptz(default=utcnow)
    deleted_at = Timestamptz(null=True, default=None)
    created_by = Varchar(length=64, null=True, default=None)
    updated_by = Varchar(length=64, null=True, default=None)
    owner_id = UUID(null=True, default=None)  # the responsible user (object rule "own")
    org_unit_id = UUID(null=True, default=None)  # the owning unit (object rule "branch")


class TenantKey(TenantOwned, Table, tablename="tenant_key"):
    """A tenant's data key, wrapped by the master key; one row per key version."""

    version = Integer()
    wrapped = Text()
    created_at = Timestamptz(default=utcnow)
    # unique ('tenant_id', 'version'): index tenant_key_unique_version (see migrations)


class CustomField(TenantOwned, Table, tablename="custom_field"):
    """A field a tenant added to an entity at run time."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    entity = Varchar(length=63)
    key = Varchar(length=63)
    type = Varchar(length=20)
    label_zh = Varchar(length=100)
    label_en = Varchar(length=100)
    required = Boolean(default=False)
    sensitivity = Varchar(length=10, default="public")
    searchable = Boolean(default=False)
    options = JSON(default=[])  # select choices: [{"value", "zh", "en"}]
    rules = JSON(default={})  # max_length, min, max, pattern, reference
    position = Integer(default=0)
    created_at = Timestamptz(default=utcnow)
    # unique ('tenant_id', 'entity', 'key'): index custom_field_unique_key (see migrations)


class BlindIndex(TenantOwned, Table, tablename="blind_index"):
    """Keyed HMAC of a secret field's normalised value: exact search without decrypting."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    entity = Varchar(length=63)
    field = Varchar(length=63)
    digest = Varchar(length=64)  # index blind_index_lookup (tenant_id, entity, field, digest)
    record_id = UUID(index=True)


class Role(TenantOwned, Table, tablename="role"):
    """A named set of permissions and how far its object rule reaches (own/branch/all)."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    name = Varchar(length=63)
    label_zh = Varchar(length=100)
    label_en = Varchar(length=100)
    permissions = JSON(default=[])
    scope = Varchar(length=10, default="own")
    # unique ('tenant_id', 'name'): index role_unique_name (see migrations)


class User(TenantOwned, Table, tablename="app_user"):
    """A person who signs in to one tenant."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    username = Varchar(length=63)
    display_name = Varchar(length=100)
    password_hash = Text()
    roles = JSON(default=[])
    active = Boolean(default=True)
    created_at = Timestamptz(default=utcnow)
    org_unit_id = UUID(null=True, default=None)
    email = Varchar(length=254, null=True, default=None)
    totp_secret = Text(null=True, default=None)  # sealed with the tenant's data key
    totp_enabled = Boolean(default=False)
    totp_last_step = BigInt(default=0)  # codes are single-use: only later steps pass
    recovery_codes = JSON(default=[])  # SHA-256 digests of unused recovery codes
    password_changed_at = Timestamptz(default=utcnow)
    failed_logins = Integer(default=0)
    locked_until = Timestamptz(null=True, default=None)
    oidc_subject = Varchar(length=255, null=True, default=None)
    # unique ('tenant_id', 'username'): index app_user_unique_username (see migrations)


class ApiToken(TenantOwned, Table, tablename="api_token"):
    """A bearer token, stored as a SHA-256 digest; the tenant id travels in its prefix."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    user_id = UUID()
    digest = Varchar(length=64, unique=True)
    name = Varchar(length=100)
    expires_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=utcnow)
    scopes = JSON(null=True, default=None)  # None: the user's permissions; else a subset
    last_used_at = Timestamptz(null=True, default=None)


class OrgUnit(TenantOwned, Table, tablename="org_unit"):
    """Head office, branches, teams: a tree; `path` lists the ids from the root."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    parent_id = UUID(null=True, default=None)
    code = Varchar(length=40)
    name = Varchar(length=100)
    path = Varchar(length=1000)  # "/<root id>/<child id>/.../<own id>/"
    created_at = Timestamptz(default=utcnow)
    # unique ('tenant_id', 'code'): index org_unit_unique_code (see migrations)


class FieldPolicy(TenantOwned, Table, tablename="field_policy"):
    """A role's access to one field: hidden, masked, read or write."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    role = Varchar(length=63)
    entity = Varchar(length=63)
    field = Varchar(length=63)
    policy = Varchar(length=10)
    # unique ('tenant_id', 'role', 'entity', 'field'): index field_policy_unique (migrations)


class WebSession(TenantOwned, Table, tablename="web_session"):
    """A signed-in browser: the cookie holds a random token, the table its SHA-256."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    user_id = UUID()
    digest = Varchar(length=64, unique=True)
    csrf = Varchar(length=64)
    mfa_passed = Boolean(default=False)
    created_at = Timestamptz(default=utcnow)
    last_seen_at = Timestamptz(default=utcnow)
    expires_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    ip = Varchar(length=64, null=True, default=None)
    user_agent = Varchar(length=300, null=True, default=None)


class AuthEvent(TenantOwned, Table, tablename="auth_event"):
    """Sign-ins, failures, lockouts, reveals of masked values: who, when, from where."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    user_id = UUID(null=True, default=None)
    username = Varchar(length=63)
    kind = Varchar(length=30)
    ip = Varchar(length=64, null=True, default=None)
    user_agent = Varchar(length=300, null=True, default=None)
    detail = JSON(default={})
    created_at = Timestamptz(default=utcnow)




class AuditEntry(TenantOwned, Table, tablename="audit_entry"):
    """One link of a tenant's hash chain: who did what to which record, and the field diff.

    Append-only: the app role may only INSERT and SELECT it, and triggers refuse UPDATE and
    DELETE. `hash = SHA-256(prev_hash || canonical JSON of the entry)`.
    """

    id = UUID(primary_key=True, default=uuid.uuid4)
    seq = BigInt()
    at = Timestamptz(default=utcnow)
    user_id = Varchar(length=64, null=True, default=None)
    username = Varchar(length=63, null=True, default=None)
    roles = JSON(default=[])
    ip = Varchar(length=64, null=True, default=None)
    user_agent = Varchar(length=300, null=True, default=None)
    request_id = Varchar(length=64, null=True, default=None)
    action = Varchar(length=40)
    entity = Varchar(length=63, null=True, default=None)
    record_id = Varchar(length=64, null=True, default=None)
    diff = JSON(default={})
    prev_hash = Varchar(length=64)
    hash = Varchar(length=64)
    # unique ('tenant_id', 'seq'): index audit_entry_seq (see migrations)


class AuditCheckpoint(TenantOwned, Table, tablename="audit_checkpoint"):
    """A signed statement of the chain head: seq and hash at a moment, Ed25519-signed with a
    key kept outside the database, so a rewritten chain cannot match it."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    seq = BigInt()
    hash = Varchar(length=64)
    at = Timestamptz(default=utcnow)
    key_id = Varchar(length=32)
    signature = Text()


class AuditHead(TenantOwned, Table, tablename="audit_head"):
    """The end of a tenant's chain; appends lock this row, so the chain never forks."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    seq = BigInt(default=0)
    hash = Varchar(length=64)
    base_seq = BigInt(default=0)  # after pruning: the chain starts after this signed entry
    base_hash = Varchar(length=64, default="0" * 64)
    # unique ('tenant_id'): index audit_head_tenant (see migrations)


class OutboxMessage(TenantOwned, Table, tablename="outbox_message"):
    """A domain event or a job, written in the transaction of the change that caused it.

    The outbox is the source of truth for background work: a relay sends due rows to the
    broker and sends them again when no worker finished them in time; a message is done
    when `finished_at` is set, dead (shown to tenant admins, retryable) when `dead_at` is.
    """

    id = UUID(primary_key=True, default=uuid.uuid4)
    kind = Varchar(length=10)  # event | job
    name = Varchar(length=100)  # event type (customer.created) or job name
    payload = JSON(default={})
    created_at = Timestamptz(default=utcnow)
    created_by = Varchar(length=64, null=True, default=None)
    request_id = Varchar(length=64, null=True, default=None)
    available_at = Timestamptz(default=utcnow)  # due for (re)sending from this moment
    attempts = Integer(default=0)
    max_attempts = Integer(default=8)
    sent_at = Timestamptz(null=True, default=None)
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    dead_at = Timestamptz(null=True, default=None)
    last_error = Text(null=True, default=None)
    progress_done = BigInt(default=0)
    progress_total = BigInt(null=True, default=None)
    progress_note = Varchar(length=200, null=True, default=None)
    # index outbox_message_due (tenant_id, available_at) of unfinished rows (see migrations)


class ProcessedMessage(TenantOwned, Table, tablename="processed_message"):
    """One handler's completion of one message, committed with the handler's own writes:
    a message delivered twice finds its row and is not handled again."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    message_id = UUID()
    handler = Varchar(length=150)
    processed_at = Timestamptz(default=utcnow)
    # unique ('tenant_id', 'message_id', 'handler'): index processed_message_once


class ScheduleState(TenantOwned, Table, tablename="schedule_state"):
    """The last period a periodic job was fired for, per tenant: the scheduler fires a period
    once (the row locked, updated in one transaction with the outbox insert) and catches up
    after downtime."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    job = Varchar(length=100)
    last_fired_for = Timestamptz()
    fired_at = Timestamptz(default=utcnow)
    # unique ('tenant_id', 'job'): index schedule_state_job


class Webhook(TenantOwned, Table, tablename="webhook"):
    """A tenant's subscription of a URL to event types; the signing secret is sealed."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    url = Varchar(length=500)
    events = JSON(default=[])  # event types, or ["*"]
    secret = Text()  # AES-256-GCM ciphertext of the HMAC secret
    active = Boolean(default=True)
    description = Varchar(length=200, default="")
    created_at = Timestamptz(default=utcnow)
    created_by = Varchar(length=64, null=True, default=None)


class WebhookDelivery(TenantOwned, Table, tablename="webhook_delivery"):
    """One attempt to deliver one event to one webhook: the integrator's delivery log."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    webhook_id = UUID()
    message_id = UUID()
    event = Varchar(length=100)
    attempt = Integer(default=1)
    status_code = Integer(null=True, default=None)
    duration_ms = Integer(default=0)
    error = Varchar(length=500, null=True, default=None)
    delivered = Boolean(default=False)
    at = Timestamptz(default=utcnow)
class IdempotencyKey(TenantOwned, Table, tablename="idempotency_key"):
    """A client's `Idempotency-Key` and the first answer given to it, replayed on retries.

    Scoped to the caller (`principal`, a user id), so one user's key never replays another's
    answer. `lock_token` fences the claim: only the request holding the current token may
    store the answer, so a request that outlived its lease cannot commit next to its taker.
    """

    id = UUID(primary_key=True, default=uuid.uuid4)
    principal = Varchar(length=64)  # the caller's user id
    key = Varchar(length=255)
    method = Varchar(length=10)
    path = Text()
    fingerprint = Varchar(length=64)  # SHA-256 of method, path, query and canonical body
    status = Varchar(length=12, default="in_progress")  # in_progress | done
    lock_token = Varchar(length=32)
    locked_at = Timestamptz(default=utcnow)
    response_status = Integer(null=True, default=None)
    response_headers = JSON(default=[])  # [[name, value], ...] without hop-by-hop headers
    response_body = Text(null=True, default=None)  # sealed with the tenant's data key
    created_at = Timestamptz(default=utcnow)
    expires_at = Timestamptz()
    # unique ('tenant_id', 'principal', 'key'): index idempotency_key_unique (see migrations)
class Document(TenantOwned, Table, tablename="document"):
    """An uploaded file (KYC copy, contract, ...) of one record. The file itself is stored
    encrypted outside the database (core.docstore); this row says whose it is and how to
    show it. The file name may contain a person's name: it is sealed like a secret field
    and shown masked."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    entity = Varchar(length=63)
    record_id = UUID()
    kind = Varchar(length=30)
    filename_sealed = Text()  # AES-256-GCM of the original file name (core.crypto)
    filename_masked = Varchar(length=100)  # display form, e.g. "张***.jpg"
    content_type = Varchar(length=100)  # from the file's magic bytes, not the client
    size = BigInt()  # plaintext bytes
    key_version = Integer()  # data key version the file is encrypted under
    digest = Varchar(length=64)  # HMAC-SHA256 of the content, keyed per tenant
    created_by = Varchar(length=64, null=True, default=None)
    created_at = Timestamptz(default=utcnow)
    deleted_at = Timestamptz(null=True, default=None)
    deleted_by = Varchar(length=64, null=True, default=None)
    expires_on = Date(null=True, default=None)  # e.g. the ID card's validity (KYC expiry)
    # index document_by_record (tenant_id, entity, record_id) (see migrations)
    # index document_expiring (tenant_id, expires_on) of live rows (see migrations)


class Notification(TenantOwned, Table, tablename="notification"):
    """An in-app message to one user (core.notifications); `ref` makes it idempotent per
    recipient. The title is stored in clear in both languages: no personal data in it."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    user_id = UUID()
    kind = Varchar(length=60)
    title_zh = Varchar(length=300)
    title_en = Varchar(length=300)
    link = Varchar(length=500, null=True, default=None)
    ref = Varchar(length=200, null=True, default=None)
    created_at = Timestamptz(default=utcnow)
    read_at = Timestamptz(null=True, default=None)
    # unique ('tenant_id', 'user_id', 'ref'): index notification_once (see migrations)
    # index notification_inbox (tenant_id, user_id, read_at, created_at)


class ImportJob(TenantOwned, Table, tablename="import_job"):
    """One spreadsheet import of a registry entity (core.imports): the uploaded file is kept
    encrypted like a document (core.docstore, under this id); this row holds its column
    mapping, the state of its last check or commit and the errors found (capped)."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    entity = Varchar(length=63)
    filename = Varchar(length=200)
    size = BigInt(default=0)
    key_version = Integer(default=1)  # data key version the stored file is encrypted under
    status = Varchar(length=20, default="uploaded")  # see core.imports.STATUSES
    headers = JSON(default=[])  # the header row's texts
    mapping = JSON(default={})  # column index (as text) -> field key
    total_rows = Integer(default=0)
    valid_rows = Integer(default=0)
    error_count = Integer(default=0)
    warning_count = Integer(default=0)
    created_count = Integer(default=0)
    errors = JSON(default=[])  # [{row, column, field, code, params, level}], capped
    message_id = UUID(null=True, default=None)  # the background job of the last run
    created_by = Varchar(length=64, null=True, default=None)
    created_at = Timestamptz(default=utcnow)
    updated_at = Timestamptz(default=utcnow)
    finished_at = Timestamptz(null=True, default=None)
    # index import_job_by_time (tenant_id, created_at) (see migrations)


KERNEL_TABLES: list[type[Table]] = [
    Tenant, TenantKey, CustomField, BlindIndex, Role, User, ApiToken, OrgUnit, FieldPolicy,
    WebSession, AuthEvent, AuditEntry, AuditHead, AuditCheckpoint, OutboxMessage,
    ProcessedMessage, ScheduleState, Webhook, WebhookDelivery, IdempotencyKey, Document,
    Notification,
    ImportJob,
]
