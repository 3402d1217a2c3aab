"""Documents: files uploaded to a record (ID card copies, credit reports, bank statements,
contracts), encrypted at rest, streamed in and out, and recorded in the audit log.

Access follows the record the document belongs to, through the read path of core.records:
uploading and deleting need `<entity>.update`, listing and downloading `<entity>.read`, and
in both cases the record must be visible under the object rules (another branch's record
answers 404, so do its documents). The file is encrypted chunk by chunk with the tenant's
current data key (core.docstore) while it arrives; nothing in clear touches the disk. The
row keeps the file name sealed (it may hold a person's name) with a masked form for lists,
and a keyed HMAC of the content instead of a plain hash. Every upload, download or preview
and delete appends `document.upload` / `document.download` / `document.delete` to the
audit chain with the document id and kind; the file name appears only as a keyed digest.

Long work stays outside database transactions: an upload checks access in a short read
transaction, streams the file into storage, then inserts the row, appends the audit entry
and makes the file visible in one write transaction; if anything fails nothing is left.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import os
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import structlog

from core import audit, records
from core.access import require
from core.crypto import DecryptionError, TenantKeys, tenant_keys, token_version
from core.docstore import (
    Decryptor,
    DocumentMissing,
    DocumentStorage,
    Encryptor,
    LocalStorage,
    decrypt_stream,
)
from core.errors import FieldError, NotFound, ValidationFailed, XindaiError
from core.events import emit
from core.identity import user_names
from core.registry import EntityType
from core.tables import Document
from core.tenancy import Context, TenantInfo, tenant_scope

log = structlog.get_logger("xindai.documents")

KINDS: dict[str, tuple[str, str]] = {
    "id_front": ("身份证人像面", "ID card (photo side)"),
    "id_back": ("身份证国徽面", "ID card (emblem side)"),
    "credit_report": ("征信报告", "Credit report"),
    "bank_statement": ("银行流水", "Bank statement"),
    "property_certificate": ("房产证", "Property certificate"),
    "contract": ("合同", "Contract"),
    "other": ("其他", "Other"),
}
KIND_LABEL = {"zh-CN": "资料类型", "en": "Document type"}
EXPIRY_LABEL = {"zh-CN": "有效期至", "en": "Valid until"}
# Accepted types, recognised by their first bytes (never by the client's word or the name).
TYPES = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png",
         "image/webp": ".webp"}
SNIFF_BYTES = 12
MAX_FILENAME = 200
REENCRYPT_BATCH = 100
CHECKED_FIRST = 1024 * 1024  # decrypted (authenticated) before a download starts


class DocumentTooLarge(XindaiError):
    status = 413
    code = "document_too_large"


class DocumentTypeRefused(XindaiError):
    status = 422
    code = "document_type"


class DocumentFileRequired(XindaiError):
    status = 422
    code = "document_file_required"


class DocumentUnreadable(XindaiError):
    status = 500
    code = "document_unreadable"


def sniff(head: bytes) -> str | None:
    """The content type the first bytes prove, if it is one we accept."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def kind_label(kind: str, locale: str | None) -> str:
    zh, en = KINDS.get(kind, (kind, kind))
    return en if locale == "en" else zh


def human_size(n: int) -> str:
    """`20 MiB`, `1.5 KiB`, `300 B` (integer arithmetic; one decimal at most)."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            whole, tenth = divmod((n * 10 + factor // 2) // factor, 10)
            return f"{whole} {unit}" if tenth == 0 else f"{whole}.{tenth} {unit}"
    return f"{n} B"


def clean_filename(raw: str | None) -> str:
    """The last path component, without control characters, at most 200 characters (the
    extension kept)."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    if len(name) > MAX_FILENAME:
        stem, ext = os.path.splitext(name)
        ext = ext[:16]
        name = stem[:MAX_FILENAME - len(ext)] + ext
    return name or "document"


def mask_filename(name: str) -> str:
    """`张三身份证.jpg` -> `张***.jpg`: enough to tell files apart, no names."""
    stem, ext = os.path.splitext(name)
    return (stem[:1] + "***" + ext[:16])[:100]


def content_disposition(filename: str, content_type: str, inline: bool) -> str:
    """RFC 6266 with an RFC 5987 UTF-8 name (Chinese names survive) and an ASCII fallback."""
    stem, ext = os.path.splitext(filename)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_.")
    ext = ext if re.fullmatch(r"\.[A-Za-z0-9]{1,10}", ext) else TYPES.get(content_type, "")
    fallback = (stem if re.search(r"[A-Za-z0-9]", stem) else "document") + ext
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def storage_for(tenant: TenantInfo) -> DocumentStorage:
    """A provider plugin's storage (`choose_provider(kind="document_storage")`), else local
    files under the document directory."""
    from core.kernel import kernel

    k = kernel()
    return k.provider("document_storage", tenant) or LocalStorage(k.settings.document_dir)


def max_bytes() -> int:
    from core.kernel import kernel

    return kernel().settings.document_max_bytes


def _master() -> bytes:
    from core.kernel import kernel

    return kernel().master_key


def check_expiry(raw: Any) -> date | None:
    """An optional expiry date (e.g. the ID card's validity), `YYYY-MM-DD`."""
    if raw in (None, ""):
        return None
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw).strip())
    except ValueError:
        raise ValidationFailed([FieldError("expires_on", "type_date", {"field": "expires_on"},
                                           EXPIRY_LABEL)]) from None


def expiry_state(expires_on: Any, today: date, warn_days: int) -> str:
    """"expired" (before `today`), "expiring" (within `warn_days`), or ""."""
    if not expires_on:
        return ""
    day = expires_on if isinstance(expires_on, date) else date.fromisoformat(str(expires_on))
    if day < today:
        return "expired"
    return "expiring" if (day - today).days <= warn_days else ""


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, date) else value


def _check_kind(kind: Any) -> str:
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValidationFailed([FieldError("kind", "choice", {"field": "kind", "value": kind},
                                           KIND_LABEL)])
    return kind


async def _parent(ctx: Context, entity_name: str, record_id: Any, action: str
                  ) -> tuple[EntityType, uuid.UUID]:
    """The record's entity and id, if ctx may `action` it and sees it; else 403 / 404."""
    entity = await records.entity_for(ctx, entity_name)
    require(ctx, f"{entity.name}.{action}")
    record = await records.get(ctx, entity.name, record_id)  # object rules: else 404
    return entity, uuid.UUID(record["id"])


def _uuid(value: Any) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise NotFound() from None


async def _row(ctx: Context, entity: EntityType, record_id: uuid.UUID, document_id: Any
               ) -> dict[str, Any]:
    rows = await Document.select().where(
        Document.tenant_id == ctx.tenant_id, Document.id == _uuid(document_id),
        Document.entity == entity.name, Document.record_id == record_id,
        Document.deleted_at.is_null()).run()
    if not rows:
        raise NotFound()
    return rows[0]


def describe(row: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
    """A document as the API shows it: the masked file name only."""
    created = row["created_at"]
    return {
        "id": str(row["id"]), "entity": row["entity"], "record_id": str(row["record_id"]),
        "kind": row["kind"], "filename": row["filename_masked"],
        "content_type": row["content_type"], "size": row["size"],
        "key_version": row["key_version"], "created_by": row["created_by"],
        "created_by_name": (names or {}).get(row["created_by"] or "", ""),
        "created_at": created.isoformat() if isinstance(created, datetime) else str(created),
        "expires_on": _iso(row.get("expires_on")),
    }


# --- upload ------------------------------------------------------------------------------

class PendingUpload:
    """One upload in progress: `start_file`, `write` pieces as they arrive, `end_file`, then
    `finish(kind)`, or `abort()`. The content is sniffed, counted, digested and encrypted
    on the way; storage sees ciphertext only and shows nothing until `finish` commits."""

    def __init__(self, ctx: Context, entity: EntityType, record_id: uuid.UUID,
                 keys: TenantKeys, storage: DocumentStorage, limit: int) -> None:
        self.ctx, self.entity, self.record_id = ctx, entity, record_id
        self.id = uuid.uuid4()
        self.keys, self.storage, self.limit = keys, storage, limit
        self.filename = ""
        self.content_type: str | None = None
        self.size = 0
        self.received = False
        self._chosen = False
        self._writer: Any = None
        self._head = bytearray()
        self._mac = hmac.new(keys.content_mac_key(), digestmod=hashlib.sha256)
        self._sealer = Encryptor(keys, self.id)

    async def start_file(self, filename: str | None) -> None:
        if self._writer is not None:
            raise XindaiError("bad_request")  # one file per upload
        self.filename = clean_filename(filename)
        self._chosen = bool(filename)  # a form sends filename="" when no file was chosen
        self._writer = await self.storage.open_write(self.ctx.tenant_id, self.id)

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise DocumentTooLarge(max=human_size(self.limit))
        self._mac.update(data)
        if self.content_type is None:
            self._head += data
            if len(self._head) < SNIFF_BYTES:
                return
            data = self._sniffed()
        await self._writer.write(self._sealer.feed(data))

    def _sniffed(self) -> bytes:
        head = bytes(self._head)
        self.content_type = sniff(head)
        if self.content_type is None:
            raise DocumentTypeRefused()
        self._head.clear()
        return head

    async def end_file(self) -> None:
        if self._writer is None or (self.size == 0 and not self._chosen):
            raise DocumentFileRequired()
        if self.content_type is None:
            await self._writer.write(self._sealer.feed(self._sniffed()))
        await self._writer.write(self._sealer.finish())
        self.received = True

    async def abort(self) -> None:
        if self._writer is not None:
            await self._writer.abort()

    async def finish(self, kind: Any, expires_on: Any = None) -> dict[str, Any]:
        """Check the kind (and the optional expiry date), insert the row, append the audit
        entry, make the file visible: one transaction, so either all of it happens or
        none."""
        committed = False
        ctx = self.ctx
        try:
            if not self.received:
                raise DocumentFileRequired()
            kind = _check_kind(kind)
            expiry = check_expiry(expires_on)
            async with tenant_scope(ctx):
                entity, record_id = await _parent(ctx, self.entity.name, self.record_id,
                                                  "update")
                row = {
                    "id": self.id, "tenant_id": ctx.tenant_id, "entity": entity.name,
                    "record_id": record_id, "kind": kind,
                    "filename_sealed": self.keys.encrypt("document", "filename", self.id,
                                                         self.filename),
                    "filename_masked": mask_filename(self.filename),
                    "content_type": self.content_type, "size": self.size,
                    "key_version": self._sealer.version, "digest": self._mac.hexdigest(),
                    "created_by": ctx.user_id, "created_at": datetime.now(UTC),
                    "expires_on": expiry,
                }
                await Document.insert(Document(**row)).run()
                await audit.append(ctx, "document.upload", "document", self.id, {
                    "kind": [None, kind], "record": [None, f"{entity.name}/{record_id}"],
                    "filename": [None, await audit.secret_digest(ctx, "document", "filename",
                                                                 self.filename)],
                    "content_type": [None, self.content_type], "size": [None, self.size],
                    "expires_on": [None, _iso(expiry)]})
                await emit(ctx, "document.uploaded", {
                    "id": str(self.id), "entity": entity.name, "record_id": str(record_id),
                    "kind": kind})
                await self._writer.commit()
                committed = True
        except BaseException:
            await self.abort()
            if committed:  # the database refused the commit after the file went in
                await self.storage.delete(ctx.tenant_id, self.id)
            raise
        log.info("document_uploaded", tenant=str(ctx.tenant_id), document=str(self.id),
                 kind=kind, size=self.size)
        return describe(row)


async def begin_upload(ctx: Context, entity_name: str, record_id: Any) -> PendingUpload:
    """Check that ctx may add documents to the record, before reading any of the file."""
    async with tenant_scope(ctx, write=False):
        entity, rid = await _parent(ctx, entity_name, record_id, "update")
        keys = await tenant_keys(_master(), ctx.tenant_id)
    return PendingUpload(ctx, entity, rid, keys, storage_for(ctx.tenant), max_bytes())


async def upload(ctx: Context, entity_name: str, record_id: Any, kind: str,
                 filename: str | None, content: AsyncIterable[bytes] | bytes,
                 expires_on: Any = None) -> dict[str, Any]:
    """Store one document for a record (for code that has the whole input at hand; the web
    layer drives a PendingUpload from the request stream instead)."""
    _check_kind(kind)
    check_expiry(expires_on)
    pending = await begin_upload(ctx, entity_name, record_id)
    try:
        await pending.start_file(filename)
        if isinstance(content, bytes | bytearray):
            for start in range(0, len(content), 64 * 1024):
                await pending.write(bytes(content[start:start + 64 * 1024]))
        else:
            async for piece in content:
                await pending.write(piece)
        await pending.end_file()
    except BaseException:
        await pending.abort()
        raise
    return await pending.finish(kind, expires_on)


# --- list, download, delete --------------------------------------------------------------

async def list_documents(ctx: Context, entity_name: str, record_id: Any
                         ) -> list[dict[str, Any]]:
    """The record's live documents, newest first, with the uploader's display name."""
    async with tenant_scope(ctx, write=False):
        entity, rid = await _parent(ctx, entity_name, record_id, "read")
        rows = await Document.select().where(
            Document.tenant_id == ctx.tenant_id, Document.entity == entity.name,
            Document.record_id == rid, Document.deleted_at.is_null(),
        ).order_by(Document.created_at, ascending=False).order_by(Document.id).run()
        names = await user_names(ctx, (r["created_by"] for r in rows))
    return [describe(r, names) for r in rows]


@dataclass
class Download:
    """An opened document: what to send, and its plaintext as an async iterator."""

    id: uuid.UUID
    kind: str
    filename: str
    content_type: str
    size: int
    inline: bool
    chunks: AsyncIterator[bytes]

    def headers(self) -> dict[str, str]:
        return {"Content-Disposition": content_disposition(self.filename, self.content_type,
                                                           self.inline),
                "Content-Length": str(self.size), "Cache-Control": "no-store, private"}


async def open_document(ctx: Context, entity_name: str, record_id: Any, document_id: Any,
                        inline: bool = False) -> Download:
    """Open a document for download (or inline preview) and record that in the audit log.

    Up to the first MiB is decrypted before this returns, so a file that is missing, is
    another document's, or is damaged anywhere in a small file (most ID photos) fails here
    with a clear error instead of mid-response. Past that the file streams: a chunk that
    does not authenticate ends the stream early (the client sees a body shorter than
    Content-Length), and no unauthenticated byte is ever sent."""
    async with tenant_scope(ctx, write=False):
        entity, rid = await _parent(ctx, entity_name, record_id, "read")
        row = await _row(ctx, entity, rid, document_id)
        try:
            keys = await tenant_keys(_master(), ctx.tenant_id)
            filename = keys.decrypt("document", "filename", row["id"], row["filename_sealed"])
        except DecryptionError as exc:  # shredded keys
            raise _unreadable(ctx, row, exc) from None
    chunks = _plaintext(ctx, keys, row)
    checked: list[bytes] = []
    held = 0
    while held < CHECKED_FIRST and (piece := await anext(chunks, None)) is not None:
        checked.append(piece)
        held += len(piece)
    async with tenant_scope(ctx):
        await audit.append(ctx, "document.download", "document", row["id"], {
            "kind": row["kind"], "record": f"{entity.name}/{rid}",
            "disposition": "inline" if inline else "attachment"})
    return Download(row["id"], row["kind"], filename, row["content_type"], row["size"],
                    inline, _prepend(checked, chunks))


async def _prepend(first: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for piece in first:
        yield piece
    async for piece in rest:
        yield piece


def _unreadable(ctx: Context, row: dict[str, Any], exc: Exception) -> DocumentUnreadable:
    log.error("document_unreadable", tenant=str(ctx.tenant_id), document=str(row["id"]),
              problem=str(exc))
    return DocumentUnreadable()


async def _plaintext(ctx: Context, keys: TenantKeys, row: dict[str, Any]
                     ) -> AsyncIterator[bytes]:
    storage = storage_for(ctx.tenant)
    total = 0
    try:
        async for piece in decrypt_stream(keys, row["id"],
                                          storage.read(ctx.tenant_id, row["id"])):
            total += len(piece)
            yield piece
    except (DecryptionError, DocumentMissing) as exc:
        raise _unreadable(ctx, row, exc) from None
    if total != row["size"]:
        raise _unreadable(ctx, row, ValueError(f"{total} bytes, expected {row['size']}"))


async def delete_document(ctx: Context, entity_name: str, record_id: Any,
                          document_id: Any) -> None:
    """Soft delete: the document leaves lists and downloads; the encrypted file stays for
    retention until the tenant's keys are shredded."""
    async with tenant_scope(ctx):
        entity, rid = await _parent(ctx, entity_name, record_id, "update")
        row = await _row(ctx, entity, rid, document_id)
        await Document.update({Document.deleted_at: datetime.now(UTC),
                               Document.deleted_by: ctx.user_id}).where(
            Document.tenant_id == ctx.tenant_id, Document.id == row["id"]).run()
        await audit.append(ctx, "document.delete", "document", row["id"], {
            "kind": row["kind"], "record": f"{entity.name}/{rid}"})
        await emit(ctx, "document.deleted", {"id": str(row["id"]), "entity": entity.name,
                                             "record_id": str(rid), "kind": row["kind"]})


async def set_expiry(ctx: Context, entity_name: str, record_id: Any, document_id: Any,
                     expires_on: Any) -> dict[str, Any]:
    """Set or clear a document's expiry date (`<entity>.update`); audited, and emitted as
    `document.updated`."""
    expiry = check_expiry(expires_on)
    async with tenant_scope(ctx):
        entity, rid = await _parent(ctx, entity_name, record_id, "update")
        row = await _row(ctx, entity, rid, document_id)
        if row["expires_on"] != expiry:
            await Document.update({Document.expires_on: expiry}).where(
                Document.tenant_id == ctx.tenant_id, Document.id == row["id"]).run()
            await audit.append(ctx, "document.expiry", "document", row["id"], {
                "record": f"{entity.name}/{rid}",
                "expires_on": [_iso(row["expires_on"]), _iso(expiry)]})
            await emit(ctx, "document.updated", {"id": str(row["id"]), "entity": entity.name,
                                                 "record_id": str(rid), "kind": row["kind"],
                                                 "expires_on": _iso(expiry)})
        row["expires_on"] = expiry
    return describe(row)


# --- attachment fields -------------------------------------------------------------------

async def attachment_ok(ctx: Context, entity: str, record_id: uuid.UUID | None,
                        document_id: str) -> bool:
    """May a record's attachment field hold this id? A live document of the tenant, and of
    this very record once the record exists (inside the caller's tenant scope)."""
    where = [Document.tenant_id == ctx.tenant_id, Document.id == uuid.UUID(document_id),
             Document.deleted_at.is_null()]
    if record_id is not None:
        where += [Document.entity == entity, Document.record_id == record_id]
    return bool(await Document.exists().where(*where).run())


# --- key management (core.keys) ----------------------------------------------------------

async def stale_count(ctx: Context, active: int) -> int:
    """Documents (deleted ones too: their files still exist) under an older key version."""
    return await Document.count().where(Document.tenant_id == ctx.tenant_id,
                                        Document.key_version < active).run()


async def reencrypt(ctx: Context, progress: Any = None) -> int:
    """Rewrite every document file under an older key version with the current one,
    streaming, into a new file that replaces the old one only once the row is updated.
    Returns how many were rewritten; a document that cannot be read is logged and left
    (the status keeps counting it)."""
    changed, last = 0, None
    storage = storage_for(ctx.tenant)
    while True:
        async with tenant_scope(ctx, write=False):
            keys = await tenant_keys(_master(), ctx.tenant_id)
            where = [Document.tenant_id == ctx.tenant_id,
                     Document.key_version < keys.active_version]
            if last is not None:
                where.append(Document.id > last)
            rows = await Document.select(
                Document.id, Document.key_version, Document.filename_sealed, Document.size,
            ).where(*where).order_by(Document.id).limit(REENCRYPT_BATCH).run()
        for row in rows:
            try:
                changed += await _reencrypt_one(ctx, storage, keys, row)
            except (DecryptionError, DocumentMissing) as exc:
                _unreadable(ctx, row, exc)
        if progress:
            reported = progress("document", changed)
            if inspect.isawaitable(reported):
                await reported
        if len(rows) < REENCRYPT_BATCH:
            return changed
        last = rows[-1]["id"]


async def _reencrypt_one(ctx: Context, storage: DocumentStorage, keys: TenantKeys,
                         row: dict[str, Any]) -> int:
    opener, sealer = Decryptor(keys, row["id"]), Encryptor(keys, row["id"])
    writer = await storage.open_write(ctx.tenant_id, row["id"])
    try:
        total = 0
        async for piece in storage.read(ctx.tenant_id, row["id"]):
            plain = opener.feed(piece)
            total += len(plain)
            await writer.write(sealer.feed(plain))
        plain = opener.finish()
        total += len(plain)
        await writer.write(sealer.feed(plain) + sealer.finish())
        if total != row["size"]:
            raise DecryptionError(f"{total} bytes, expected {row['size']}")
        name = row["filename_sealed"]
        if token_version(name) < keys.active_version:
            name = keys.encrypt("document", "filename", row["id"],
                                keys.decrypt("document", "filename", row["id"], name))
        async with tenant_scope(ctx):
            done = await Document.update({Document.key_version: sealer.version,
                                          Document.filename_sealed: name}).where(
                Document.tenant_id == ctx.tenant_id, Document.id == row["id"],
                Document.key_version == row["key_version"],  # another run got there first
            ).returning(Document.id).run()
            if done:
                await writer.commit()
    finally:
        await writer.abort()  # no-op after commit
    return len(done)


async def count(ctx: Context) -> int:
    """All of the tenant's documents, deleted ones included."""
    return await Document.count().where(Document.tenant_id == ctx.tenant_id).run()


async def remove_files(ctx: Context) -> int:
    """Delete every stored file of the tenant (after crypto-shredding); returns how many."""
    return await storage_for(ctx.tenant).delete_tenant(ctx.tenant_id)
