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
    """A named set of permissions; the access issue enforces them."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    name = Varchar(length=63)
    label_zh = Varchar(length=100)
    label_en = Varchar(length=100)
    permissions = JSON(default=[])
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


KERNEL_TABLES: list[type[Table]] = [
    Tenant, TenantKey, CustomField, BlindIndex, Role, User, ApiToken,
]
