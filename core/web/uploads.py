"""Document uploads and downloads over HTTP, shared by the API and the web shell.

An upload is read from the request body as it arrives (multipart/form-data parsed by the
`multipart` push parser, the one Litestar itself uses) and each piece of the `file` part
goes straight into core.documents, which encrypts it. Litestar's own form parsing would
first spool the whole file, in clear, to a temporary file: not for ID card copies.

Fields: `kind` (a document kind), optionally `expires_on` (YYYY-MM-DD), and `file`; `_csrf` too from the web shell, where it must
come before the file (browsers send fields in page order), so a forged request is refused
before any byte is stored. After a refusal (413 too large, 422 wrong type) the rest of the
body is read and dropped up to the route's body limit, so a browser sees the answer
instead of a reset connection.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.exceptions import InternalServerException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.response import Stream
from multipart import MultipartError, MultipartSegment, PushMultipartParser

from core import documents
from core.errors import XindaiError
from core.tenancy import Context

MAX_FIELD_BYTES = 1024
MAX_PARTS = 8
BODY_SLACK = 1024 * 1024  # room for the other fields and multipart framing


class NotMultipart(XindaiError):
    status = 415
    code = "document_multipart"


def body_limit() -> int:
    """The request body limit of upload routes: twice the file limit (so a too-large file is
    still read to the end and answered 413 in the user's language), plus framing."""
    return 2 * documents.max_bytes() + BODY_SLACK


async def upload_from_request(request: Request[Any, Any, Any], ctx: Context, entity: str,
                              record_id: Any, csrf: str | None = None,
                              fields: dict[str, str] | None = None) -> dict[str, Any]:
    """Store the request's file for the record; returns the new document (describe()).
    `fields` receives the other form fields, also when the upload is refused (to show the
    form again as it was)."""
    pending = await documents.begin_upload(ctx, entity, record_id)  # 403/404 before reading
    stream = request.stream()
    fields = {} if fields is None else fields
    try:
        await _receive(request, stream, pending, csrf, fields)
    except XindaiError:
        await pending.abort()
        await _drain(stream)
        raise
    except BaseException:
        await pending.abort()
        raise
    return await pending.finish(fields.get("kind"), fields.get("expires_on"))


async def _receive(request: Request[Any, Any, Any], stream: AsyncIterator[bytes],
                   pending: documents.PendingUpload, csrf: str | None,
                   fields: dict[str, str]) -> None:
    content_type, options = request.content_type
    boundary = options.get("boundary")
    if content_type != "multipart/form-data" or not boundary:
        raise NotMultipart()
    segment: MultipartSegment | None = None
    buffer = bytearray()
    in_file = False
    try:
        with PushMultipartParser(boundary.encode(), max_segment_count=MAX_PARTS) as parser:
            while not parser.closed:
                chunk = await anext(stream, b"")
                for part in parser.parse(chunk):
                    if isinstance(part, MultipartSegment):
                        segment, buffer = part, bytearray()
                        in_file = part.name == "file" and part.filename is not None
                        if in_file:
                            _check_csrf(fields, csrf)
                            await pending.start_file(part.filename)
                    elif part:
                        if in_file:
                            await pending.write(bytes(part))
                        elif segment is not None and segment.filename is None:
                            buffer += part
                            if len(buffer) > MAX_FIELD_BYTES:
                                raise XindaiError("bad_request")
                    elif in_file:
                        await pending.end_file()
                        in_file = False
                    elif segment is not None and segment.filename is None and segment.name:
                        fields[segment.name] = buffer.decode("utf-8", "replace")
    except MultipartError:
        raise XindaiError("bad_request") from None
    except RequestEntityTooLarge:
        raise documents.DocumentTooLarge(
            max=documents.human_size(documents.max_bytes())) from None
    _check_csrf(fields, csrf)


def _check_csrf(fields: dict[str, str], expected: str | None) -> None:
    if expected is None:
        return
    sent = fields.get("_csrf", "")
    if not secrets.compare_digest(sent.encode(), expected.encode()):
        from core.web.ui.security import CsrfRefused

        raise CsrfRefused()


async def _drain(stream: AsyncIterator[bytes]) -> None:
    try:
        async for _ in stream:
            pass
    except (RequestEntityTooLarge, InternalServerException, RuntimeError):
        pass  # over the limit, or the client gave up: the answer goes out anyway


async def download_response(ctx: Context, entity: str, record_id: Any, document_id: Any,
                            inline: bool) -> Stream:
    """The document decrypted chunk by chunk into the response (audited by core.documents).
    """
    opened = await documents.open_document(ctx, entity, record_id, document_id, inline)
    return Stream(opened.chunks, media_type=opened.content_type, headers=opened.headers())


class _InMemory:
    """The file part of a form, kept in memory up to `limit` bytes (a spreadsheet to
    import: it is encrypted as soon as it is whole, never spooled to disk in clear)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.filename: str | None = None
        self.data = bytearray()

    async def start_file(self, filename: str | None) -> None:
        self.filename = filename or ""

    async def write(self, data: bytes) -> None:
        self.data += data
        if len(self.data) > self.limit:
            raise documents.DocumentTooLarge(max=documents.human_size(self.limit))

    async def end_file(self) -> None:
        return None


async def file_from_request(request: Request[Any, Any, Any], limit: int,
                            csrf: str | None = None, fields: dict[str, str] | None = None
                            ) -> tuple[str, bytes]:
    """The `file` part of a multipart request as (file name, bytes), read as it streams
    in (same parser and CSRF rule as document uploads); 413 past `limit`, 422 without a
    file."""
    sink = _InMemory(limit)
    stream = request.stream()
    try:
        await _receive(request, stream, sink, csrf, {} if fields is None else fields)  # type: ignore[arg-type]
    except XindaiError:
        await _drain(stream)
        raise
    if sink.filename is None:
        raise documents.DocumentFileRequired()
    return sink.filename, bytes(sink.data)
