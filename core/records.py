"""The one write path (and its mirror, the read path) for every tenant record.

    write: resolve entity (plugin enabled for tenant?) -> permission (`<entity>.create` ...)
           -> field write policy (a field the role may not write is refused, never dropped)
           -> validate against the registry (built-in + custom fields, unknown fields refused)
           -> encrypt secret fields, masked forms, blind indexes
           -> insert/update inside the tenant transaction (object rule: own/branch/all)
           -> emit events -> commit
    read:  tenant scope (RLS + app filter) -> object rule -> soft-delete filter
           -> field read policy (hidden: absent; masked; read) -> secret fields masked
              unless revealed (a separate permission, recorded)

Plugins call these functions; they never write tenant tables for registry entities by hand.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from piccolo.columns.combination import WhereRaw
from piccolo.table import Table

from core import audit
from core.access import allows, field_policy, object_clause, require
from core.crypto import TenantKeys, tenant_keys, token_version
from core.customfields import custom_fields
from core.db import is_postgres
from core.errors import (
    Conflict,
    FieldError,
    FieldsForbidden,
    NotFound,
    ValidationFailed,
    XindaiError,
)
from core.events import emit
from core.fields import FieldDef, FieldProblem, FieldType, from_column, mask, to_column
from core.registry import EntityType
from core.tables import BlindIndex
from core.tenancy import Context, tenant_scope

MAX_PER_PAGE = 200
SYSTEM_KEYS = ("id", "version", "created_at", "updated_at")
READONLY_KEYS = (*SYSTEM_KEYS, "owner_id", "org_unit_id")  # set by the system, not by input
_SORTABLE_SYSTEM = ("created_at", "updated_at")
_OPS = ("gte", "lte", "gt", "lt", "ne", "contains")


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "total": self.total, "page": self.page,
                "per_page": self.per_page}


async def entity_for(ctx: Context, name: str) -> EntityType:
    """The entity as this tenant sees it; unknown or disabled-plugin entities do not exist."""
    from core.kernel import kernel

    entity = kernel().registry.get(name)
    if entity is None or not ctx.tenant.enabled(entity.plugin):
        raise NotFound("unknown_entity", entity=name)
    return entity.with_custom(await custom_fields(ctx, name))


def field_error(entity: EntityType, key: str, code: str, **params: Any) -> FieldError:
    """An error on `key`, labelled in both languages when the field is known."""
    f = entity.field(key)
    labels = {"zh-CN": f.label_zh, "en": f.label_en} if f else {}
    return FieldError(key, code, {"field": key, **params}, labels)


def check_writable(ctx: Context, entity: EntityType, data: Any) -> None:
    """Refuse (403) a request that sets any field the user's role may not write."""
    if not isinstance(data, dict):
        return
    errors = []
    for key in data:
        f = entity.field(key)
        if f is None:
            continue  # validate() reports unknown fields
        policy = field_policy(ctx, entity, f)
        if policy != "write":
            errors.append(field_error(entity, key,
                                      "field_hidden" if policy == "hidden" else
                                      "field_not_writable"))
    if errors:
        raise FieldsForbidden(errors)


def readable(ctx: Context, entity: EntityType, f: FieldDef) -> bool:
    return field_policy(ctx, entity, f) != "hidden"


def usable(ctx: Context, entity: EntityType, f: FieldDef) -> bool:
    """May ctx filter, search or sort by `f`? Only with read or write: searching a field
    shown masked (`?q=王` on masked names) would reveal it one guess at a time."""
    return field_policy(ctx, entity, f) in ("read", "write")


def validate(entity: EntityType, data: Any, before: dict[str, Any] | None) -> dict[str, Any]:
    """Coerce `data` field by field; raise ValidationFailed listing every problem.

    `before` is the current record on update (None on create); required fields are checked
    on the merged result, so a PATCH need not resend them but cannot clear them.
    """
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("", "body_object")])
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    for key, raw in data.items():
        f = entity.field(key)
        if f is None or f.readonly:
            code = "readonly_field" if key in READONLY_KEYS or f else "unknown_field"
            errors.append(field_error(entity, key, code))
            continue
        try:
            values[key] = f.coerce(raw)
        except FieldProblem as exc:
            errors.append(field_error(entity, key, exc.code, **exc.params))
    merged = {**(before or {}), **values}
    for f in entity.fields:
        if f.required and merged.get(f.key) in (None, "", ()) and not any(
            e.field == f.key for e in errors
        ):
            errors.append(field_error(entity, f.key, "required"))
    if not errors:
        for check in entity.checks:
            errors.extend(field_error(entity, e.field, e.code, **e.params)
                          for e in check(merged))
    if errors:
        raise ValidationFailed(errors)
    return values


async def _check_references(ctx: Context, entity: EntityType, values: dict[str, Any]) -> None:
    from core.kernel import kernel

    errors = []
    for key, value in values.items():
        f = entity.field(key)
        if f is None or f.type != FieldType.reference or value is None:
            continue
        target = kernel().registry.get(f.reference or "")
        t = target.table if target else None
        if t is None or not await t.exists().where(
            t.id == value, t.tenant_id == ctx.tenant_id, t.deleted_at.is_null()
        ).run():
            errors.append(field_error(entity, key, "reference"))
    if errors:
        raise ValidationFailed(errors)


async def _check_attachments(ctx: Context, entity: EntityType, values: dict[str, Any],
                             record_id: uuid.UUID | None) -> None:
    """Attachment fields hold ids of live documents of this tenant, uploaded to this record
    once it exists (core.documents)."""
    from core.documents import attachment_ok

    errors = []
    for key, value in values.items():
        f = entity.field(key)
        if f is None or f.type != FieldType.attachment or value is None:
            continue
        if not await attachment_ok(ctx, entity.name, record_id, value):
            errors.append(field_error(entity, key, "attachment_unknown"))
    if errors:
        raise ValidationFailed(errors)


def _load_json(value: Any) -> Any:
    if isinstance(value, str):
        import json

        return json.loads(value)
    return value or {}


def _decode_row(entity: EntityType, row: dict[str, Any], keys: TenantKeys | None) -> dict[str, Any]:
    """Python values of every field of a stored row (secrets decrypted only if keys given)."""
    custom, sealed, masked = (_load_json(row.get(c)) for c in ("custom", "sealed", "masked"))
    out: dict[str, Any] = {}
    for f in entity.fields:
        if f.is_secret:
            token = sealed.get(f.key)
            if token is None:
                out[f.key] = None
            elif keys is None:
                out[f.key] = masked.get(f.key)
            else:
                out[f.key] = keys.decrypt(entity.name, f.key, row["id"], token)
        elif f.column:
            out[f.key] = from_column(f, row.get(f.key))
        else:
            raw = custom.get(f.key)
            try:
                out[f.key] = f.from_json(raw)
            except FieldProblem:  # a custom field whose rules changed after the value was saved
                out[f.key] = raw
    return out


def present(ctx: Context, entity: EntityType, row: dict[str, Any],
            values: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of a record as ctx may see it: hidden fields absent, masked fields
    masked, money as strings."""
    out: dict[str, Any] = {
        "id": str(row["id"]),
        "version": row["version"],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "owner_id": None if row.get("owner_id") is None else str(row["owner_id"]),
        "org_unit_id": None if row.get("org_unit_id") is None else str(row["org_unit_id"]),
    }
    for f in entity.fields:
        policy = field_policy(ctx, entity, f)
        if policy == "hidden":
            continue
        value = f.to_json(values.get(f.key))
        if policy == "masked" and value is not None and not f.is_secret:
            value = mask(f, str(value))  # secret values are already their masked form
        out[f.key] = value
    return out


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _storage(
    entity: EntityType, row_id: uuid.UUID, values: dict[str, Any],
    keys: TenantKeys, current: dict[str, Any] | None,
) -> tuple[dict[str, Any], list[tuple[str, str | None]]]:
    """Split validated values into column values and JSON documents; encrypt secrets.

    Returns (column updates, blind-index changes as (field, digest or None)).
    """
    custom = dict(_load_json(current["custom"])) if current else {}
    sealed = dict(_load_json(current["sealed"])) if current else {}
    masked = dict(_load_json(current["masked"])) if current else {}
    columns: dict[str, Any] = {}
    bidx: list[tuple[str, str | None]] = []
    for key, value in values.items():
        f = entity.field(key)
        assert f is not None
        if f.is_secret:
            text = "" if value is None else str(f.to_json(value))
            if value is None:
                sealed.pop(key, None)
                masked.pop(key, None)
            else:
                sealed[key] = keys.encrypt(entity.name, key, row_id, text)
                masked[key] = mask(f, text)
            if f.searchable:
                digest = None if value is None else keys.blind_index(entity.name, key, text)
                bidx.append((key, digest))
        elif f.column:
            columns[key] = to_column(f, value)
        elif value is None:
            custom.pop(key, None)
        else:
            custom[key] = f.to_json(value)
    for key, token in list(sealed.items()) if current else ():  # a new row's are current
        if token_version(token) < keys.active_version:  # upgrade an older key version's
            sealed[key] = keys.encrypt(entity.name, key, row_id,
                                       keys.decrypt(entity.name, key, row_id, token))
    columns.update(custom=custom, sealed=sealed, masked=masked)
    return columns, bidx


async def _write_blind_indexes(
    ctx: Context, entity: EntityType, row_id: uuid.UUID, changes: list[tuple[str, str | None]],
    new_record: bool = False,
) -> None:
    """Replace the blind-index rows of the changed fields: one DELETE (none for a new
    record, which has no rows yet) and one multi-row INSERT, whatever the number of fields."""
    if not changes:
        return
    if not new_record:
        await BlindIndex.delete().where(
            BlindIndex.record_id == row_id, BlindIndex.tenant_id == ctx.tenant_id,
            BlindIndex.field.is_in([key for key, _ in changes]),
        ).run()
    rows = [BlindIndex(tenant_id=ctx.tenant_id, entity=entity.name, field=key, digest=digest,
                       record_id=row_id) for key, digest in changes if digest is not None]
    if rows:
        await BlindIndex.insert(*rows).run()


def _col(table: type[Table], name: str) -> Any:
    return table._meta.get_column_by_name(name)


def _scope(ctx: Context, t: type[Table]) -> list[Any]:
    """Tenant, object rule and soft-delete conditions every read and write starts from."""
    where = [t.tenant_id == ctx.tenant_id, t.deleted_at.is_null()]
    rule = object_clause(ctx, t)
    if rule is not None:
        where.append(rule)
    return where


async def _fetch_row(ctx: Context, entity: EntityType, record_id: Any) -> dict[str, Any]:
    """One record the user may see, else 404 (another branch's record does not exist)."""
    t = entity.table
    try:
        rid = record_id if isinstance(record_id, uuid.UUID) else uuid.UUID(str(record_id))
    except ValueError:
        raise NotFound() from None
    rows = await t.select().where(t.id == rid, *_scope(ctx, t)).output(load_json=True).run()
    if not rows:
        raise NotFound()
    return rows[0]


def new_row(ctx: Context, entity: EntityType, values: dict[str, Any], keys: TenantKeys,
            owner: dict[str, Any] | None = None, now: datetime | None = None,
            ) -> tuple[dict[str, Any], list[tuple[str, str | None]]]:
    """The stored row of a new record from validated values (secrets sealed, masked forms,
    system columns) and its blind-index digests; shared by `create` and core.records_bulk."""
    row_id = uuid.uuid4()
    columns, bidx = _storage(entity, row_id, values, keys, None)
    now = now or datetime.now(UTC)
    row = {
        "id": row_id, "tenant_id": ctx.tenant_id, "version": 1, "created_at": now,
        "updated_at": now, "created_by": ctx.user_id, "updated_by": ctx.user_id,
        "owner_id": _uuid_or_none(owner["id"] if owner else ctx.user_id),
        "org_unit_id": _uuid_or_none(owner["org_unit_id"] if owner
                                     else ctx.access.org_unit_id),
        **columns,
    }
    return row, bidx


async def create(ctx: Context, entity_name: str, data: Any,
                 owner: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate and insert a record; emits `<entity>.created`. Nothing is written on error.

    The record belongs to its creator and the creator's unit, or to `owner` (a user row
    with `id` and `org_unit_id`), which only a user with `<entity>.assign` may name.
    """
    if owner is not None:
        require(ctx, f"{entity_name}.assign")
    from core.kernel import kernel

    system: dict[str, Any] = {}
    declared = kernel().registry.get(entity_name)
    if declared is not None and declared.before_create is not None \
            and ctx.tenant.enabled(declared.plugin):
        require(ctx, f"{entity_name}.create")
        owner, system = await declared.before_create(ctx, data, owner)
    async with tenant_scope(ctx):
        entity = await entity_for(ctx, entity_name)
        require(ctx, f"{entity.name}.create")
        check_writable(ctx, entity, data)
        values = validate(entity, data, None)
        await _check_references(ctx, entity, values)
        await _check_attachments(ctx, entity, values, None)
        keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
        row, bidx = new_row(ctx, entity, values, keys, owner)
        row.update(system)  # columns the entity's before_create set (readonly to input)
        row_id = row["id"]
        t = entity.table
        await t.insert(t(_ignore_missing=True, **row)).run()
        await _write_blind_indexes(ctx, entity, row_id, bidx, new_record=True)
        record = present(ctx, entity, row, _decode_row(entity, row, None))
        await audit.append(ctx, "create", entity.name, row_id,
                           await _audit_diff(ctx, entity, {}, values))
        await emit(ctx, f"{entity.name}.created", {"entity": entity.name, "id": str(row_id)})
        return record


async def update(
    ctx: Context, entity_name: str, record_id: Any, data: Any, expected_version: int | None = None
) -> dict[str, Any]:
    """Change some fields of a record; emits `<entity>.updated` with the changed field names."""
    from core.kernel import kernel

    async with tenant_scope(ctx):
        entity = await entity_for(ctx, entity_name)
        require(ctx, f"{entity.name}.update")
        current = await _fetch_row(ctx, entity, record_id)
        check_writable(ctx, entity, data)
        keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
        if expected_version is not None and expected_version != current["version"]:
            raise Conflict("version_conflict")
        before = _decode_row(entity, current, keys)
        values = validate(entity, data, before)
        await _check_references(ctx, entity, values)
        changed = {k: v for k, v in values.items() if before.get(k) != v}
        await _check_attachments(ctx, entity, changed, current["id"])
        if not changed:
            return present(ctx, entity, current, _decode_row(entity, current, None))
        columns, bidx = _storage(entity, current["id"], changed, keys, current)
        now = datetime.now(UTC)
        columns.update(version=current["version"] + 1, updated_at=now, updated_by=ctx.user_id)
        t = entity.table
        written = await t.update({_col(t, k): v for k, v in columns.items()}).where(
            t.id == current["id"], t.tenant_id == ctx.tenant_id,
            t.version == current["version"],  # a concurrent writer got there first: 409
        ).returning(t.id).run()
        if not written:
            raise Conflict("version_conflict")
        await _write_blind_indexes(ctx, entity, current["id"], bidx)
        await audit.append(ctx, "update", entity.name, current["id"],
                           await _audit_diff(ctx, entity, before, changed))
        row = {**current, **columns}
        await emit(ctx, f"{entity.name}.updated", {
            "entity": entity.name, "id": str(current["id"]), "fields": sorted(changed),
        })
        return present(ctx, entity, row, _decode_row(entity, row, None))


async def delete(ctx: Context, entity_name: str, record_id: Any) -> None:
    """Soft-delete: the row stays (for audit and retention) but no longer reads or lists."""
    async with tenant_scope(ctx):
        entity = await entity_for(ctx, entity_name)
        require(ctx, f"{entity.name}.delete")
        current = await _fetch_row(ctx, entity, record_id)
        t = entity.table
        written = await t.update(
            {t.deleted_at: datetime.now(UTC), t.version: current["version"] + 1}
        ).where(
            t.id == current["id"], t.tenant_id == ctx.tenant_id,
            t.version == current["version"],
        ).returning(t.id).run()
        if not written:
            raise Conflict("version_conflict")
        await BlindIndex.delete().where(
            BlindIndex.tenant_id == ctx.tenant_id, BlindIndex.record_id == current["id"]
        ).run()
        await audit.append(ctx, "delete", entity.name, current["id"])
        await emit(ctx, f"{entity.name}.deleted", {"entity": entity.name, "id": str(current["id"])})


async def get(
    ctx: Context, entity_name: str, record_id: Any, reveal: bool = False
) -> dict[str, Any]:
    """One record as ctx may see it. `reveal` decrypts every visible secret field and needs
    `<entity>.reveal` (used by exports; people reveal one field at a time, recorded)."""
    from core.kernel import kernel

    async with tenant_scope(ctx, write=False):
        entity = await entity_for(ctx, entity_name)
        require(ctx, f"{entity.name}.read")
        if reveal:
            require(ctx, f"{entity.name}.reveal")
        row = await _fetch_row(ctx, entity, record_id)
        keys = await tenant_keys(kernel().master_key, ctx.tenant_id) if reveal else None
        return present(ctx, entity, row, _decode_row(entity, row, keys))


async def reveal_field(ctx: Context, entity_name: str, record_id: Any, field_key: str) -> Any:
    """The clear value of one masked field, for a user with `<entity>.reveal`; recorded."""
    from core.identity import record
    from core.kernel import kernel

    async with tenant_scope(ctx):
        entity = await entity_for(ctx, entity_name)
        require(ctx, f"{entity.name}.read")
        require(ctx, f"{entity.name}.reveal")
        f = entity.field(field_key)
        if f is None or not readable(ctx, entity, f):
            raise NotFound()
        row = await _fetch_row(ctx, entity, record_id)
        keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
        value = f.to_json(_decode_row(entity, row, keys).get(f.key))
        await record(ctx, "reveal", None, username=ctx.username, entity=entity.name,
                     record=str(row["id"]), field=f.key)
        return value


async def find_ids(ctx: Context, entity_name: str, field_key: str, value: str) -> list[str]:
    """Exact search on a secret searchable field through its blind index."""
    from core.kernel import kernel

    async with tenant_scope(ctx):  # the search is recorded: a write (see _records_search)
        entity = await entity_for(ctx, entity_name)
        require(ctx, f"{entity.name}.read")
        f = entity.field(field_key)
        if f is None or not (f.is_secret and f.searchable) or not usable(ctx, entity, f) \
                or not may_search_secret(ctx, entity, f):
            raise XindaiError("bad_filter", field=field_key)
        keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
        ids = await _bidx_ids(ctx, entity, f, keys, value)
        return [str(i) for i in ids]


SECRET_SEARCHES_PER_MINUTE = 60


def may_search_secret(ctx: Context, entity: EntityType, f: FieldDef) -> bool:
    """Exact search on a secret field confirms a guessed value, so it is for those who enter
    such values (write policy) or may reveal them; everyone else gets no match."""
    return field_policy(ctx, entity, f) == "write" or allows(ctx, f"{entity.name}.reveal")


async def _bidx_ids(
    ctx: Context, entity: EntityType, f: FieldDef, keys: TenantKeys, raw: str
) -> list[uuid.UUID]:
    """Records whose secret field equals `raw`, by blind index; each well-formed search is
    rate-limited per user and recorded (who searched which field, how many matched)."""
    from core.identity import record
    from core.ratelimit import hit

    try:
        value = f.coerce(raw)
    except FieldProblem:
        return []
    hit("secret_search", f"{ctx.tenant_id}:{ctx.user_id}", SECRET_SEARCHES_PER_MINUTE)
    digest = keys.blind_index(entity.name, f.key, str(f.to_json(value)))
    rows = await BlindIndex.select(BlindIndex.record_id).where(
        BlindIndex.tenant_id == ctx.tenant_id, BlindIndex.entity == entity.name,
        BlindIndex.field == f.key, BlindIndex.digest == digest,
    ).run()
    if ctx.user_id is not None:
        await record(ctx, "secret_search", None, username=ctx.username, entity=entity.name,
                     field=f.key, matches=len(rows))
    return [r["record_id"] for r in rows]


def _custom_json_where(engine_pg: bool, key: str, value: Any) -> WhereRaw:
    """Equality on a custom field kept in the `custom` JSON document.

    PostgreSQL's `->>` renders JSON true as 'true'; SQLite's json_extract gives 1.
    """
    if isinstance(value, bool):
        text = ("true" if value else "false") if engine_pg else ("1" if value else "0")
    else:
        text = str(value)
    if engine_pg:
        return WhereRaw("(custom::jsonb ->> {}) = {}", key, text)
    return WhereRaw("CAST(json_extract(custom, {}) AS TEXT) = {}", f"$.{key}", text)


def _records_search(entity_name: str, filters: dict[str, str] | None, q: str | None) -> bool:
    """Whether a list may search a secret field, which records the search (an audit write).
    Such a list opens a write transaction from the start: on SQLite a read transaction that
    starts writing fails at once ("database is locked") when another connection committed
    meanwhile (background jobs do, all the time)."""
    from core.kernel import kernel

    if q and q.strip():
        return True
    entity = kernel().registry.get(entity_name)
    for raw_key in filters or {}:
        f = entity.field(raw_key.partition("__")[0]) if entity else None
        if f is None or f.is_secret:  # unknown keys may be a tenant's secret custom field
            return True
    return False


async def list_records(
    ctx: Context,
    entity_name: str,
    filters: dict[str, str] | None = None,
    sort: str | None = None,
    page: int = 1,
    per_page: int = 20,
    q: str | None = None,
    reveal: bool = False,
) -> Page:
    """Filter (`field`, `field__gte` ...), search (`q`), sort (`-field`) and paginate.
    `reveal` decrypts the visible secret fields, as `get(reveal=True)` does (exports)."""
    from core.kernel import kernel

    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise XindaiError("bad_page")
    async with tenant_scope(ctx, write=_records_search(entity_name, filters, q)):
        entity = await entity_for(ctx, entity_name)
        require(ctx, f"{entity.name}.read")
        if reveal:
            require(ctx, f"{entity.name}.reveal")
        t = entity.table
        pg = is_postgres(t._meta.db)
        where: list[Any] = _scope(ctx, t)
        keys: TenantKeys | None = None
        for raw_key, raw in (filters or {}).items():
            if raw_key == "owner_id":  # the system column the object rules use
                owner = _uuid_or_none(raw)
                if owner is None:
                    raise XindaiError("bad_filter", field=raw_key)
                where.append(t.owner_id == owner)
                continue
            key, _, op = raw_key.partition("__")
            f = entity.field(key)
            if f is None or (op and op not in _OPS) or not usable(ctx, entity, f):
                raise XindaiError("bad_filter", field=raw_key)
            if op == "contains":
                if not (f.column and f.type in (FieldType.text, FieldType.long_text)):
                    raise XindaiError("bad_filter", field=raw_key)
                where.append(_contains(_col(t, key), raw, pg))
                continue
            try:
                value = f.coerce(raw)
            except FieldProblem as exc:
                raise ValidationFailed([field_error(entity, key, exc.code, **exc.params)]) from None
            if f.is_secret:
                if not f.searchable or op or not may_search_secret(ctx, entity, f):
                    raise XindaiError("bad_filter", field=raw_key)
                keys = keys or await tenant_keys(kernel().master_key, ctx.tenant_id)
                where.append(t.id.is_in(await _bidx_ids(ctx, entity, f, keys, raw) or [uuid.uuid4()]))
            elif f.column:
                col, stored = _col(t, key), to_column(f, value)
                if f.type == FieldType.multi_select:
                    raise XindaiError("bad_filter", field=raw_key)
                where.append({"": col == stored, "gte": col >= stored, "lte": col <= stored,
                              "gt": col > stored, "lt": col < stored, "ne": col != stored}[op])
            else:
                if op or f.type == FieldType.multi_select:
                    raise XindaiError("bad_filter", field=raw_key)
                where.append(_custom_json_where(pg, key, f.to_json(value)))
        if q and q.strip():
            where.append(await _search_clause(ctx, entity, q.strip()))
        order = sort or entity.default_sort
        desc = order.startswith("-")
        order_key = order.lstrip("-")
        of = entity.field(order_key)
        if order_key not in _SORTABLE_SYSTEM and not (
            of and of.sortable and of.column and not of.is_secret
            and usable(ctx, entity, of)
        ):
            raise XindaiError("bad_sort", field=order_key)
        total = await t.count().where(*where).run()
        rows = await (
            t.select().where(*where).order_by(_col(t, order_key), ascending=not desc)
            .order_by(t.id).limit(per_page).offset((page - 1) * per_page)
            .output(load_json=True).run()
        )
        clear = await tenant_keys(kernel().master_key, ctx.tenant_id) if reveal else None
        items = [present(ctx, entity, r, _decode_row(entity, r, clear)) for r in rows]
        return Page(items, total, page, per_page)


async def _audit_diff(ctx: Context, entity: EntityType, before: dict[str, Any],
                      after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for the audit log; secret values only as keyed hashes."""
    from core.kernel import kernel

    return audit_diff(await tenant_keys(kernel().master_key, ctx.tenant_id), entity, before,
                      after)


def audit_diff(keys: TenantKeys, entity: EntityType, before: dict[str, Any],
               after: dict[str, Any]) -> dict[str, list[Any]]:
    """`_audit_diff` with the tenant's keys at hand (core.records_bulk)."""
    from core.audit import digest_with

    diff: dict[str, list[Any]] = {}
    for key in after:
        f = entity.field(key)
        if f is None:
            continue
        pair = [f.to_json(before.get(key)), f.to_json(after.get(key))]
        if f.is_secret:
            pair = [None if v is None else digest_with(keys, entity.name, key, v)
                    for v in pair]
        diff[key] = pair
    return diff


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return None if value is None else uuid.UUID(str(value))
    except ValueError:
        return None


def _contains(column: Any, text: str, pg: bool) -> Any:
    """Case-insensitive substring match. `%` and `_` are dropped from the text so a user
    cannot send a pattern (piccolo gives LIKE no ESCAPE clause)."""
    pattern = "%" + text.replace("%", "").replace("_", "") + "%"
    return column.ilike(pattern) if pg else column.like(pattern)


async def _search_clause(ctx: Context, entity: EntityType, q: str) -> Any:
    """`q` matches searchable text columns by substring, and secret searchable fields exactly."""
    from core.kernel import kernel

    t = entity.table
    clause = None
    ids: list[uuid.UUID] = []
    for f in entity.fields:
        if not f.searchable or not usable(ctx, entity, f):
            continue
        if f.is_secret:
            if may_search_secret(ctx, entity, f):
                keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
                ids.extend(await _bidx_ids(ctx, entity, f, keys, q))
        elif f.column and f.type in (FieldType.text, FieldType.long_text, FieldType.credit_code):
            part = _contains(_col(t, f.key), q, is_postgres(t._meta.db))
            clause = part if clause is None else clause | part
    if ids:
        part = t.id.is_in(ids)
        clause = part if clause is None else clause | part
    return clause if clause is not None else t.id.is_in([uuid.uuid4()])
