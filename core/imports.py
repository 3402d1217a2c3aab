"""Spreadsheet import and export of any registry entity (built-in and custom fields).

    template     an xlsx whose header row is the importable fields' labels in the user's
                 language, a second sheet describing each column (type, required, choices)
    upload       the file is kept encrypted like a document (core.docstore) under the
                 import's id; its header row is matched to fields (core.import_fields)
    mapping      the user may change which column fills which field
    dry run      a background job reads every row, validates it with the registry (the same
                 `records.validate` as the API), looks for duplicates in the file and in the
                 database (blind index / column), asks the `duplicate_finder` and
                 `party_screen` providers, and stores the errors; nothing is written
    commit       the same job with inserts: batches of BATCH rows through
                 `records_bulk.create_many`, all inside ONE tenant transaction, so one bad
                 row in 10,000 leaves nothing behind; the report names it
    report       the errors as an xlsx in the reader's language (row, column, reason)
    export       a filtered list as an xlsx with the template's columns, masked per the
                 user's field policies (clear text only with `<entity>.reveal` and asked
                 for); every export is audited

Permissions: `records.import` with `<entity>.create` (and write policy on every mapped
field); `records.export` with `<entity>.read` (`<entity>.reveal` for clear text).
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from core import audit, outbox, records
from core.access import field_policy, require
from core.crypto import TenantKeys, tenant_keys
from core.errors import Conflict, FieldError, NotFound, ValidationFailed, XindaiError
from core.fields import FieldDef, FieldType
from core.i18n import t
from core.import_fields import (
    IDENTITY_TYPES,
    NOT_IMPORTABLE,
    TEXT_TYPES,
    auto_map,
    cell_to_raw,
    header_text,
    mapping_errors,
    type_hint,
    value_to_cell,
)
from core.registry import EntityType
from core.tables import BlindIndex, ImportJob
from core.tenancy import Context, tenant_scope
from core.xlsx import XLSX_TYPE, Sheet, Unreadable, safe_title, table_bytes

PERM_IMPORT, PERM_EXPORT = "records.import", "records.export"
JOB_NAME = "core.imports.run"
STATUSES = ("uploaded", "queued", "checking", "checked", "invalid", "committing",
            "committed", "failed", "expired")
RUNNING = ("queued", "checking", "committing")
MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 200_000
MAX_ERRORS = 10_000  # errors kept for the report; the count goes on
BATCH = 2000
EXPORT_MAX = 50_000
PROGRESS_EVERY = 5000
KEEP_DAYS = 7  # an uploaded file not imported is deleted after this (core.imports.cleanup)


# -- fields ----------------------------------------------------------------------------

def importable_fields(ctx: Context, entity: EntityType) -> list[FieldDef]:
    """The fields a column may fill for this user: writable, not read-only, not files."""
    return [f for f in entity.fields if not f.readonly and f.type not in NOT_IMPORTABLE
            and field_policy(ctx, entity, f) == "write"]


def exported_fields(ctx: Context, entity: EntityType) -> list[FieldDef]:
    """The template's columns as far as this user may see them (hidden fields left out)."""
    return [f for f in entity.fields if not f.readonly and f.type not in NOT_IMPORTABLE
            and field_policy(ctx, entity, f) != "hidden"]


async def _import_entity(ctx: Context, entity_name: str) -> EntityType:
    entity = await records.entity_for(ctx, entity_name)
    require(ctx, PERM_IMPORT)
    require(ctx, f"{entity.name}.create")
    return entity


def template_bytes(ctx: Context, entity: EntityType, locale: str) -> bytes:
    """The import template: header row of labels, a guide sheet, choice lists as
    drop-downs, identifier and text columns formatted as text."""
    from io import BytesIO

    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    fields = importable_fields(ctx, entity)
    book = Workbook()
    sheet = book.active
    sheet.title = safe_title(entity.label(locale))
    guide = book.create_sheet(safe_title(t("import_guide_title", locale)))
    choices = book.create_sheet("choices")
    choices.sheet_state = "hidden"
    bold = Font(bold=True)
    for i, f in enumerate(fields, start=1):
        letter = get_column_letter(i)
        cell = sheet.cell(row=1, column=i, value=header_text(f, locale))
        cell.font = bold
        sheet.column_dimensions[letter].width = max(12, len(f.label(locale)) * 2 + 4)
        if f.type in TEXT_TYPES:
            for row in range(2, 1002):  # typed ID numbers stay text, not 1.4E+17
                sheet.cell(row=row, column=i).number_format = "@"
        if f.type == FieldType.single_select and f.options:
            for n, c in enumerate(f.options, start=1):
                choices.cell(row=n, column=i, value=c.label(locale))
            rule = DataValidation(type="list", allow_blank=True,
                                  formula1=f"choices!${letter}$1:${letter}${len(f.options)}")
            sheet.add_data_validation(rule)
            rule.add(f"{letter}2:{letter}10001")
    sheet.freeze_panes = "A2"
    heads = [t(k, locale) for k in ("import_guide_column", "import_guide_key",
                                    "import_guide_type", "import_guide_required",
                                    "import_guide_choices")]
    guide.append([t("import_guide_note", locale)])
    guide.append(heads)
    for c in guide[2]:
        c.font = bold
    for f in fields:
        guide.append([f.label(locale), f.key, type_hint(f, locale),
                      t("import_guide_yes", locale) if f.required else "",
                      " / ".join(c.label(locale) for c in f.options)])
    for letter, width in zip("ABCDE", (20, 20, 32, 8, 60), strict=True):
        guide.column_dimensions[letter].width = width
    out = BytesIO()
    book.save(out)
    return out.getvalue()


async def template(ctx: Context, entity_name: str) -> bytes:
    entity = await _import_entity(ctx, entity_name)
    return template_bytes(ctx, entity, ctx.locale)


# -- upload and mapping ----------------------------------------------------------------

def _storage(ctx: Context) -> Any:
    from core.documents import storage_for

    return storage_for(ctx.tenant)


async def _keys(ctx: Context) -> TenantKeys:
    from core.kernel import kernel

    async with tenant_scope(ctx, write=False):
        return await tenant_keys(kernel().master_key, ctx.tenant_id)


async def _store_file(ctx: Context, import_id: uuid.UUID, data: bytes) -> int:
    """Encrypt the file like a document (its own key, chunked AES-GCM) and store it."""
    from core.docstore import Encryptor

    keys = await _keys(ctx)
    sealer = Encryptor(keys, import_id)
    writer = await _storage(ctx).open_write(ctx.tenant_id, import_id)
    try:
        await writer.write(sealer.feed(data))
        await writer.write(sealer.finish())
        await writer.commit()
    except BaseException:
        await writer.abort()
        raise
    return sealer.version


async def _load_file(ctx: Context, import_id: uuid.UUID) -> bytes:
    from core.docstore import decrypt_stream

    keys = await _keys(ctx)
    parts = [piece async for piece in decrypt_stream(
        keys, import_id, _storage(ctx).read(ctx.tenant_id, import_id))]
    return b"".join(parts)


def _describe(row: dict[str, Any], entity: EntityType | None, locale: str) -> dict[str, Any]:
    """An import as the API and the pages show it (errors are in the report, not here)."""
    fields = {f.key: f for f in entity.fields} if entity else {}
    mapping = row["mapping"] or {}
    columns = []
    for index, header in enumerate(row["headers"] or []):
        key = mapping.get(str(index)) or ""
        f = fields.get(key)
        columns.append({"index": index, "header": header, "field": key,
                        "label": f.label(locale) if f else ""})
    return {
        "id": str(row["id"]), "entity": row["entity"], "filename": row["filename"],
        "size": row["size"], "status": row["status"], "columns": columns,
        "mapping": mapping, "total_rows": row["total_rows"], "valid_rows": row["valid_rows"],
        "error_count": row["error_count"], "warning_count": row["warning_count"],
        "created_count": row["created_count"], "created_by": row["created_by"],
        "created_at": _iso(row["created_at"]), "finished_at": _iso(row["finished_at"]),
        "message_id": None if row["message_id"] is None else str(row["message_id"]),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


async def _row(ctx: Context, import_id: Any) -> dict[str, Any]:
    try:
        wanted = import_id if isinstance(import_id, uuid.UUID) else uuid.UUID(str(import_id))
    except ValueError:
        raise NotFound() from None
    async with tenant_scope(ctx, write=False):
        rows = await ImportJob.select().where(
            ImportJob.tenant_id == ctx.tenant_id, ImportJob.id == wanted
        ).output(load_json=True).run()
    if not rows:
        raise NotFound()
    row = rows[0]
    if row["created_by"] != ctx.username and not ctx.access.can("*"):
        raise NotFound()  # an import (and its file) is its uploader's, and the admins'
    return row


async def upload(ctx: Context, entity_name: str, filename: str, data: bytes
                 ) -> dict[str, Any]:
    """Keep an uploaded workbook (encrypted) and match its header row to fields."""
    entity = await _import_entity(ctx, entity_name)
    if len(data) > MAX_BYTES:
        raise XindaiError("import_file_too_large", max=MAX_BYTES // (1024 * 1024))
    try:
        sheet = Sheet(data)
    except Unreadable:
        raise ValidationFailed([FieldError("file", "import_file_unreadable")]) from None
    try:
        headers = sheet.header()
    finally:
        sheet.close()
    if not any(headers):
        raise ValidationFailed([FieldError("file", "import_file_empty")])
    import_id = uuid.uuid4()
    version = await _store_file(ctx, import_id, data)
    mapping = auto_map(importable_fields(ctx, entity), headers)
    async with tenant_scope(ctx):
        await ImportJob.insert(ImportJob(
            id=import_id, tenant_id=ctx.tenant_id, entity=entity.name,
            filename=(filename or "import.xlsx")[:200], size=len(data), key_version=version,
            headers=headers, mapping=mapping, created_by=ctx.username)).run()
        await audit.append(ctx, "import.upload", entity.name, import_id,
                           {"size": len(data), "columns": len(headers)})
    return await describe(ctx, import_id)


async def describe(ctx: Context, import_id: Any) -> dict[str, Any]:
    """The import with its mapping problems, counts and, while it runs, its progress."""
    row = await _row(ctx, import_id)
    entity = await records.entity_for(ctx, row["entity"])
    out = _describe(row, entity, ctx.locale)
    problems = mapping_errors(importable_fields(ctx, entity), row["headers"] or [],
                              row["mapping"] or {})
    out["mapping_errors"] = [e.message(ctx.locale) for e in problems]
    out["progress"] = await _progress_of(ctx, row)
    out["errors"] = [_error_json(e, entity, ctx.locale) for e in (row["errors"] or [])[:50]]
    return out


async def set_mapping(ctx: Context, import_id: Any, mapping: dict[str, str]
                      ) -> dict[str, Any]:
    """Replace the column mapping ({column index: field key or ""}); problems are shown,
    and a run refuses to start until they are fixed."""
    row = await _row(ctx, import_id)
    entity = await _import_entity(ctx, row["entity"])
    if row["status"] in (*RUNNING, "committed", "expired"):
        raise Conflict("import_expired" if row["status"] == "expired" else "import_busy")
    if not isinstance(mapping, dict):
        raise ValidationFailed([FieldError("mapping", "body_object")])
    clean = {str(k): str(v) for k, v in mapping.items() if v}
    problems = [e for e in mapping_errors(importable_fields(ctx, entity), row["headers"] or [],
                                          clean) if e.code != "import_column_missing"]
    if problems:
        raise ValidationFailed(problems)
    async with tenant_scope(ctx):
        await ImportJob.update({ImportJob.mapping: clean, ImportJob.status: "uploaded",
                                ImportJob.updated_at: datetime.now(UTC)}).where(
            ImportJob.tenant_id == ctx.tenant_id, ImportJob.id == row["id"]).run()
    return await describe(ctx, row["id"])


async def start(ctx: Context, import_id: Any, commit: bool) -> dict[str, Any]:
    """Queue the dry run (commit=False) or the commit as a background job."""
    from core.jobs import enqueue

    row = await _row(ctx, import_id)
    entity = await _import_entity(ctx, row["entity"])
    problems = mapping_errors(importable_fields(ctx, entity), row["headers"] or [],
                              row["mapping"] or {})
    if problems:
        raise ValidationFailed(problems)
    async with tenant_scope(ctx):
        claimed = await ImportJob.update({ImportJob.status: "queued",
                                          ImportJob.updated_at: datetime.now(UTC)}).where(
            ImportJob.tenant_id == ctx.tenant_id, ImportJob.id == row["id"],
            ImportJob.status.not_in([*RUNNING, "committed", "expired"]),
        ).returning(ImportJob.id).run()
        if not claimed:
            raise Conflict("import_expired" if row["status"] == "expired" else "import_busy")
        message_id = await enqueue(ctx, JOB_NAME, import_id=str(row["id"]), commit=commit,
                                   user_id=ctx.user_id, locale=ctx.locale)
        await ImportJob.update({ImportJob.message_id: message_id}).where(
            ImportJob.tenant_id == ctx.tenant_id, ImportJob.id == row["id"]).run()
    return await describe(ctx, row["id"])


async def recent(ctx: Context, limit: int = 20) -> list[dict[str, Any]]:
    """The user's latest imports (all of the tenant's for an administrator)."""
    async with tenant_scope(ctx, write=False):
        query = ImportJob.select().where(ImportJob.tenant_id == ctx.tenant_id)
        if not ctx.access.can("*"):
            query = query.where(ImportJob.created_by == ctx.username)
        rows = await query.order_by(ImportJob.created_at, ascending=False).limit(limit) \
            .output(load_json=True).run()
    return [_describe(r, None, ctx.locale) for r in rows]


# -- progress --------------------------------------------------------------------------

_live: dict[uuid.UUID, dict[str, Any]] = {}  # runs in this process: import id -> progress


async def _progress_of(ctx: Context, row: dict[str, Any]) -> dict[str, Any] | None:
    if row["status"] not in RUNNING:
        return None
    live = _live.get(row["id"])
    if live is not None:
        return dict(live)
    if row["message_id"] is None:
        return None
    message = await outbox.get(ctx, row["message_id"])
    if message is None:
        return None
    return {"done": message["progress_done"] or 0, "total": message["progress_total"],
            "phase": message["progress_note"] or ""}


async def _report(ctx: Context, import_id: uuid.UUID, message_id: uuid.UUID | None,
                  done: int, total: int, phase: str, in_transaction: bool) -> None:
    """Progress for the page: in this process's memory at once, and on the job's outbox
    row for other processes. Inside the commit's transaction the row is written on another
    connection (PostgreSQL); SQLite has one writer, so there only memory knows."""
    from core.db import is_postgres

    _live[import_id] = {"done": done, "total": total, "phase": phase}
    if message_id is None:
        return
    if not in_transaction:
        await outbox.progress(ctx, done, total, phase, message_id=message_id)
    elif is_postgres(ImportJob._meta.db):
        task = asyncio.get_running_loop().create_task(
            outbox.progress(ctx, done, total, phase, message_id=message_id),
            context=contextvars.Context())  # outside this task's transaction
        await task


# -- the run ---------------------------------------------------------------------------

@dataclass
class Outcome:
    """What a dry run or commit found."""

    total: int = 0
    valid: int = 0
    created: int = 0
    error_count: int = 0
    warning_count: int = 0
    blacklisted: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: int, f: str, column: str, code: str, params: dict[str, Any],
            level: str = "error") -> None:
        if level == "error":
            self.error_count += 1
        else:
            self.warning_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"row": row, "field": f, "column": column, "code": code,
                                "params": {k: _plain(v) for k, v in params.items()},
                                "level": level})


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | bool) or value is None else str(value)


@dataclass
class _Pass:
    """One reading of the file: validate, find duplicates, and (commit) insert."""

    ctx: Context
    entity: EntityType
    import_id: uuid.UUID
    headers: list[str]
    mapping: dict[str, str]
    keys: TenantKeys
    commit: bool
    message_id: uuid.UUID | None
    outcome: Outcome = field(default_factory=Outcome)
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    ready: list[dict[str, Any]] = field(default_factory=list)  # checked rows to insert

    def __post_init__(self) -> None:
        from core.kernel import kernel

        fields = {f.key: f for f in self.entity.fields}
        self.columns = [(int(i), fields[k]) for i, k in self.mapping.items() if k in fields]
        self.column_of = {f.key: self.headers[i] for i, f in self.columns}
        self.identity = [f for _, f in self.columns
                         if f.type in IDENTITY_TYPES and f.searchable]
        k = kernel()
        self.finder = k.provider("duplicate_finder", self.ctx.tenant)
        self.screen = k.provider("party_screen", self.ctx.tenant)
        self.tz = self.ctx.tenant.timezone

    def error(self, row: int, key: str, code: str, level: str = "error", **params: Any
              ) -> None:
        self.outcome.add(row, key, self.column_of.get(key, ""), code, params, level)

    async def run(self, sheet: Sheet) -> None:
        total = max(sheet.max_row - 1, 0)
        batch: list[tuple[int, dict[str, Any]]] = []
        for number, cells in sheet.rows():
            self.outcome.total += 1
            if self.outcome.total > MAX_ROWS:
                raise ValidationFailed([FieldError("file", "import_too_many_rows",
                                                   {"max": MAX_ROWS})])
            values = self.validate(number, cells)
            if values is not None:
                batch.append((number, values))
            if len(batch) >= BATCH:
                await self.flush(batch)
                batch = []
            if self.outcome.total % PROGRESS_EVERY == 0:
                await _report(self.ctx, self.import_id, self.message_id, self.outcome.total,
                              max(total, self.outcome.total), "checking", False)
        await self.flush(batch)
        if not self.outcome.total:
            raise ValidationFailed([FieldError("file", "import_no_rows")])

    def validate(self, number: int, cells: tuple[Any, ...]) -> dict[str, Any] | None:
        data = {}
        for index, f in self.columns:
            raw = cell_to_raw(f, cells[index] if index < len(cells) else None, self.tz)
            if raw is not None:
                data[f.key] = raw
        try:
            values = records.validate(self.entity, data, None)
        except ValidationFailed as exc:
            for e in exc.errors:
                self.error(number, e.field, e.code, **e.params)
            return None
        repeated = False
        for f in self.identity:
            value = values.get(f.key)
            if value is None:
                continue
            first = self.seen.setdefault((f.key, str(f.to_json(value))), number)
            if first != number:
                self.error(number, f.key, "import_duplicate_in_file", first_row=first)
                repeated = True
        return None if repeated else values

    async def flush(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        if not batch:
            return
        bad: set[int] = set()
        async with tenant_scope(self.ctx, write=False):
            for f in self.identity:
                for number in await self._existing(f, batch):
                    self.error(number, f.key, "import_duplicate_existing")
                    bad.add(number)
        if self.screen is not None:
            await self._screen(batch, bad)
        if self.finder is not None:
            await self._find(batch, bad)
        good = [v for n, v in batch if n not in bad]
        self.outcome.valid += len(good)
        if self.commit and not self.outcome.error_count:
            self.ready.extend(good)

    async def write(self) -> None:
        """Insert the checked rows, a batch at a time, in the caller's transaction
        (core.records_bulk). On PostgreSQL batch n+1 is prepared (sealed, digested,
        diffed) while batch n's INSERTs run, so the database and Python work at once."""
        from core import records_bulk

        total = len(self.ready)
        extra = {"import_id": str(self.import_id)}
        from core.db import is_postgres

        # Overlap on PostgreSQL only: SQLite works in a thread of this process, where the
        # next batch's preparation would compete with it for the interpreter lock. The
        # reference check queries, which two tasks cannot do on one connection.
        serial = not is_postgres(ImportJob._meta.db) or any(
            f.type == FieldType.reference for _, f in self.columns)
        pending: asyncio.Future[None] | None = None
        placer = (await self.entity.bulk_placer(self.ctx)) if self.entity.bulk_placer \
            else None  # e.g. leads: stage and the assignment rules, as on capture
        try:
            for start in range(0, total, BATCH):
                chunk = self.ready[start:start + BATCH]
                batch = await records_bulk.prepare(self.ctx, self.entity, chunk, self.keys,
                                                   extra, 0 if serial else 100, placer)
                self.ready[start:start + BATCH] = [None] * len(chunk)  # type: ignore[list-item]
                if pending is not None:
                    await pending
                    await self._progress(start, total)
                pending = asyncio.ensure_future(records_bulk.write(self.ctx, self.entity, batch))
                if serial:
                    await pending
                self.outcome.created += len(batch.ids)
            if pending is not None:
                await pending
            if placer is not None:
                await placer.finish(self.ctx)
        except BaseException:
            if pending is not None:  # let the connection fall idle before the rollback
                await asyncio.gather(pending, return_exceptions=True)
            raise

    async def _progress(self, written: int, total: int) -> None:
        if written % PROGRESS_EVERY < BATCH:
            await _report(self.ctx, self.import_id, self.message_id, written, total,
                          "writing", True)

    async def _existing(self, f: FieldDef, batch: list[tuple[int, dict[str, Any]]]
                        ) -> list[int]:
        """Rows whose identifier `f` is already stored (live records only)."""
        wanted: dict[str, list[int]] = {}
        for number, values in batch:
            value = values.get(f.key)
            if value is not None:
                wanted.setdefault(str(f.to_json(value)), []).append(number)
        if not wanted:
            return []
        t = self.entity.table
        if f.is_secret:
            digests = {self.keys.blind_index(self.entity.name, f.key, v): v for v in wanted}
            rows = await BlindIndex.select(BlindIndex.digest).where(
                BlindIndex.tenant_id == self.ctx.tenant_id,
                BlindIndex.entity == self.entity.name, BlindIndex.field == f.key,
                BlindIndex.digest.is_in(list(digests))).run()
            hits = {digests[r["digest"]] for r in rows}
        elif f.column:
            col = t._meta.get_column_by_name(f.key)
            rows = await t.select(col).where(
                t.tenant_id == self.ctx.tenant_id, t.deleted_at.is_null(),
                col.is_in(list(wanted))).run()
            hits = {str(r[f.key]) for r in rows}
        else:
            return []
        return [n for v in hits for n in wanted.get(v, [])]

    async def _screen(self, batch: list[tuple[int, dict[str, Any]]], bad: set[int]) -> None:
        """Refuse rows whose identifiers the `party_screen` provider (blacklist) knows: one
        `check_many` call for the batch when the provider has it, else `check` per row."""
        by_type = {f.type: f for f in self.identity}
        fields = (("resident_id", by_type.get(FieldType.resident_id)),
                  ("mobile", by_type.get(FieldType.phone)),
                  ("credit_code", by_type.get(FieldType.credit_code)))
        parties: list[tuple[int, dict[str, str | None]]] = []
        for number, values in batch:
            ids = {name: None if f is None or values.get(f.key) is None
                   else str(f.to_json(values[f.key])) for name, f in fields}
            if any(ids.values()):
                parties.append((number, ids))
        if not parties:
            return
        if hasattr(self.screen, "check_many"):
            hits = await self.screen.check_many(self.ctx, [ids for _, ids in parties])
        else:
            hits = {}
            for i, (_, ids) in enumerate(parties):
                hit = await self.screen.check(self.ctx, **ids)
                if hit:
                    hits[i] = hit
        for i in sorted(hits):
            number, ids = parties[i]
            named = dict(fields).get(str(hits[i].get("matched")))  # the column that hit
            key = named.key if named is not None else next(
                f.key for name, f in fields if f is not None and ids[name])
            self.error(number, key, "import_blacklisted")
            self.outcome.blacklisted += 1
            bad.add(number)

    async def _find(self, batch: list[tuple[int, dict[str, Any]]], bad: set[int]) -> None:
        """The `duplicate_finder` provider's matches (similar names ...): a warning each,
        or an error when the match says `block`."""
        live = [(n, v) for n, v in batch if n not in bad]
        rows = [{k: self.entity.field(k).to_json(x) for k, x in v.items()  # type: ignore[union-attr]
                 } for _, v in live]
        found = await self.finder.find_duplicates(self.ctx, self.entity.name, rows) or {}
        for index, matches in found.items():
            if not isinstance(index, int) or not 0 <= index < len(live):
                continue
            number = live[index][0]
            for match in matches or []:
                m = match if isinstance(match, dict) else {"reason": str(match)}
                block = bool(m.get("block"))
                reason = str(m.get("reason") or m.get("message") or m.get("record_id") or "")
                self.error(number, str(m.get("field") or ""), "import_possible_duplicate",
                           "error" if block else "warning", reason=reason)
                if block:
                    bad.add(number)


async def run(ctx: Context, import_id: Any, commit: bool) -> Outcome:
    """Check (and with `commit`, insert) every row of an import as ctx. Every row is
    checked first (validation, duplicates, blacklist) against the stored records; only a
    file without errors is written, all rows in one transaction (a failure on the way
    rolls back every batch)."""
    from core.outbox import current_message

    row = await _row(ctx, import_id)
    if row["status"] == "committed":
        return Outcome(total=row["total_rows"], valid=row["valid_rows"],
                       created=row["created_count"])  # a re-delivered job: done already
    entity = await _import_entity(ctx, row["entity"])
    problems = mapping_errors(importable_fields(ctx, entity), row["headers"] or [],
                              row["mapping"] or {})
    if problems:
        raise ValidationFailed(problems)
    message = current_message()
    message_id = message.id if message else row["message_id"]
    await _set(ctx, row["id"], status="committing" if commit else "checking")
    work = _Pass(ctx, entity, row["id"], row["headers"] or [], row["mapping"] or {},
                 await _keys(ctx), commit, message_id)
    sheet = Sheet(await _load_file(ctx, row["id"]))
    try:
        await work.run(sheet)  # every row checked before anything is written
        sheet.close()
        if commit and not work.outcome.error_count:
            try:
                async with tenant_scope(ctx):  # all rows or none
                    await work.write()
                    await _finish(ctx, row["id"], work.outcome, "committed")
                    await audit.append(ctx, "import.commit", entity.name, row["id"], {
                        "rows": work.outcome.total, "created": work.outcome.created})
            except BaseException:
                work.outcome.created = 0
                raise
    except ValidationFailed as exc:
        work.outcome.created = 0
        for e in exc.errors:
            work.outcome.add(0, e.field, "", e.code, e.params)
    finally:
        sheet.close()
        work.ready.clear()
        _live.pop(row["id"], None)
    out = work.outcome
    if not (commit and out.created):  # a commit that wrote finished inside its transaction
        await _finish(ctx, row["id"], out, "invalid" if out.error_count else "checked")
    if commit and out.created:
        await _storage(ctx).delete(ctx.tenant_id, row["id"])  # the data now lives in records
    if out.blacklisted:
        async with tenant_scope(ctx):
            await audit.append(ctx, "import.blacklist_refused", entity.name, row["id"],
                               {"rows": out.blacklisted})
    await _report(ctx, row["id"], message_id, out.total, out.total, "done", False)
    _live.pop(row["id"], None)
    return out


async def _set(ctx: Context, import_id: uuid.UUID, **values: Any) -> None:
    async with tenant_scope(ctx):
        await ImportJob.update({**{getattr(ImportJob, k): v for k, v in values.items()},
                                ImportJob.updated_at: datetime.now(UTC)}).where(
            ImportJob.tenant_id == ctx.tenant_id, ImportJob.id == import_id).run()


async def _finish(ctx: Context, import_id: uuid.UUID, out: Outcome, status: str) -> None:
    now = datetime.now(UTC)
    await _set(ctx, import_id, status=status, total_rows=out.total, valid_rows=out.valid,
               error_count=out.error_count, warning_count=out.warning_count,
               created_count=out.created, errors=out.errors, finished_at=now)


async def run_job(ctx: Context, import_id: str, commit: bool, user_id: str | None = None,
                  locale: str = "zh-CN") -> dict[str, Any]:
    """The background job: runs as the user who started it (their permissions, field
    policies and ownership), not as the system."""
    from core.identity import get_user, user_context

    actor = ctx
    if user_id:
        user = await get_user(ctx, user_id)
        if not user.get("active", True):
            raise XindaiError("forbidden")
        actor = await user_context(ctx.tenant, user, locale)
        actor = replace(actor, request_id=ctx.request_id)
    try:
        out = await run(actor, import_id, commit)
    except BaseException:
        await _set(ctx, uuid.UUID(import_id), status="failed")
        raise
    return {"rows": out.total, "errors": out.error_count, "created": out.created}


async def cleanup(ctx: Context, keep_days: int = KEEP_DAYS) -> int:
    """Delete the stored files of imports not committed within `keep_days` (they hold
    personal data in the lender's own words); their rows stay, marked expired. Committed
    imports lost their file at commit. Returns how many files went."""
    from datetime import timedelta

    cutoff = datetime.now(UTC) - timedelta(days=keep_days)
    async with tenant_scope(ctx, write=False):
        rows = await ImportJob.select(ImportJob.id).where(
            ImportJob.tenant_id == ctx.tenant_id, ImportJob.created_at < cutoff,
            ImportJob.status.not_in([*RUNNING, "committed", "expired"])).run()
    ids = [r["id"] for r in rows]
    storage = _storage(ctx)
    for import_id in ids:
        await storage.delete(ctx.tenant_id, import_id)
    if ids:
        async with tenant_scope(ctx):
            await ImportJob.update({ImportJob.status: "expired",
                                    ImportJob.updated_at: datetime.now(UTC)}).where(
                ImportJob.tenant_id == ctx.tenant_id, ImportJob.id.is_in(ids)).run()
    return len(ids)


# -- error report ----------------------------------------------------------------------

def _error_json(e: dict[str, Any], entity: EntityType, locale: str) -> dict[str, Any]:
    f = entity.field(e.get("field") or "")
    labels = {"zh-CN": f.label_zh, "en": f.label_en} if f else {}
    message = FieldError(e.get("field") or "", e["code"], dict(e.get("params") or {}),
                         labels).message(locale)
    column = e.get("column") or (f.label(locale) if f else "")
    return {"row": e["row"], "column": column, "field": e.get("field") or "",
            "level": e.get("level", "error"), "code": e["code"], "message": message}


async def report_bytes(ctx: Context, import_id: Any, locale: str | None = None) -> bytes:
    """The errors and warnings of the last run as an xlsx in `locale` (default ctx's):
    row number, column, level, reason."""
    row = await _row(ctx, import_id)
    entity = await records.entity_for(ctx, row["entity"])
    lang = locale or ctx.locale
    items = sorted((_error_json(e, entity, lang) for e in row["errors"] or []),
                   key=lambda e: (e["row"], e["level"] != "error"))
    level = {"error": t("import_report_error", lang), "warning": t("import_report_warning", lang)}
    lines: list[list[Any]] = [[e["row"] or None, e["column"], level[e["level"]], e["message"]]
                              for e in items]
    more = row["error_count"] + row["warning_count"] - len(items)
    if more > 0:
        lines.append([None, "", "", t("import_report_more", lang, more=more)])
    header = [t(k, lang) for k in ("import_report_row", "import_report_column",
                                   "import_report_level", "import_report_reason")]
    return table_bytes(t("import_report_title", lang), header, lines, [8, 24, 8, 80])


# -- export ----------------------------------------------------------------------------

async def export_bytes(ctx: Context, entity_name: str, filters: dict[str, str] | None = None,
                       q: str | None = None, sort: str | None = None, reveal: bool = False
                       ) -> bytes:
    """The filtered list as an xlsx with the template's columns (as far as the user sees
    them), masked per field policy; secrets in clear only with `reveal` (needs
    `<entity>.reveal`). Audited with the row count and the filter names, never values."""
    require(ctx, PERM_EXPORT)
    entity = await records.entity_for(ctx, entity_name)
    require(ctx, f"{entity.name}.read")
    if reveal:
        require(ctx, f"{entity.name}.reveal")
    fields = exported_fields(ctx, entity)
    lang = ctx.locale
    first = await records.list_records(ctx, entity.name, filters, sort, 1,
                                       records.MAX_PER_PAGE, q, reveal=reveal)
    if first.total > EXPORT_MAX:
        raise XindaiError("export_too_many", max=EXPORT_MAX)
    lines: list[list[Any]] = []
    page = first
    number = 1
    while True:
        lines.extend([value_to_cell(f, item.get(f.key), lang) for f in fields]
                     for item in page.items)
        if number * records.MAX_PER_PAGE >= page.total or not page.items:
            break
        number += 1
        page = await records.list_records(ctx, entity.name, filters, sort, number,
                                          records.MAX_PER_PAGE, q, reveal=reveal)
    async with tenant_scope(ctx):
        await audit.append(ctx, "export", entity.name, None, {
            "rows": len(lines), "reveal": reveal, "filters": sorted(filters or {}),
            "search": bool(q)})
    texts = [i for i, f in enumerate(fields) if f.type in TEXT_TYPES]
    return table_bytes(entity.label(lang), [header_text(f, lang) for f in fields], lines,
                       [max(12, len(f.label(lang)) * 2 + 4) for f in fields], texts)


__all__ = ["EXPORT_MAX", "JOB_NAME", "PERM_EXPORT", "PERM_IMPORT", "XLSX_TYPE", "Outcome",
           "describe", "export_bytes", "importable_fields", "recent", "report_bytes", "run",
           "run_job", "set_mapping", "start", "template", "template_bytes", "upload"]
