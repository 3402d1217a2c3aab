"""The API of spreadsheet imports and exports (core.imports).

    GET  /api/v1/imports/template?entity=customer   the xlsx template (user's language)
    POST /api/v1/imports?entity=customer            upload (multipart `file`): the import,
                                                    its columns and their matched fields
    GET  /api/v1/imports                            my latest imports
    GET  /api/v1/imports/{id}                       one: status, counts, mapping problems,
                                                    progress while it runs, first errors
    PUT  /api/v1/imports/{id}/mapping               {"mapping": {"0": "name", ...}}
    POST /api/v1/imports/{id}/dry-run               check every row, write nothing (job)
    POST /api/v1/imports/{id}/commit                check, then write all rows or none (job)
    GET  /api/v1/imports/{id}/errors[?lang=en]      the error report (xlsx)
    GET  /api/v1/<entities>/export                  the filtered list as xlsx (in the
                                                    entity's router: core.web.api)

Import routes need `records.import` (and the entity's create permission, checked by
core.imports); the export needs `records.export` and the entity's read permission.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from core import imports
from core.i18n import normalise_locale
from core.web.context import CurrentContext
from core.web.uploads import BODY_SLACK, file_from_request

IMPORT = {"permission": imports.PERM_IMPORT}
TAG = "imports"


def xlsx_response(data: bytes, filename: str) -> Response[bytes]:
    """An xlsx download; the file name in UTF-8 (RFC 6266) with an ASCII fallback."""
    return Response(data, media_type=imports.XLSX_TYPE, headers={
        "Content-Disposition": f"attachment; filename=\"export.xlsx\"; "
                               f"filename*=UTF-8''{quote(filename, safe='')}",
        "Cache-Control": "no-store"})


class MappingChange(msgspec.Struct):
    """Column index (as text) -> field key; "" leaves a column out."""

    mapping: dict[str, str]


@get("/imports/template", summary="The import template of an entity (xlsx)", tags=[TAG],
     opt=IMPORT)
async def import_template(ctx: CurrentContext, entity: FromQuery[str]) -> Response[bytes]:
    data = await imports.template(ctx, entity)
    return xlsx_response(data, f"{entity}-template.xlsx")


@post("/imports", summary="Upload a spreadsheet to import", tags=[TAG], opt=IMPORT,
      status_code=201, request_max_body_size=2 * imports.MAX_BYTES + BODY_SLACK)
async def import_upload(request: Request[Any, Any, Any], ctx: CurrentContext,
                        entity: FromQuery[str]) -> dict[str, Any]:
    """`multipart/form-data` with `file` (xlsx). The file is stored encrypted; its header
    row is matched to the entity's fields by zh-CN or en label or by key."""
    filename, data = await file_from_request(request, imports.MAX_BYTES)
    return await imports.upload(ctx, entity, filename, data)


@get("/imports", summary="My latest imports", tags=[TAG], opt=IMPORT)
async def import_list(ctx: CurrentContext) -> list[dict[str, Any]]:
    return await imports.recent(ctx)


@get("/imports/{import_id:uuid}", summary="One import, with its progress while it runs",
     tags=[TAG], opt=IMPORT)
async def import_status(ctx: CurrentContext, import_id: FromPath[UUID]) -> dict[str, Any]:
    return await imports.describe(ctx, import_id)


@put("/imports/{import_id:uuid}/mapping", summary="Change which column fills which field",
     tags=[TAG], opt=IMPORT)
async def import_mapping(ctx: CurrentContext, import_id: FromPath[UUID],
                         data: JSONBody[MappingChange]) -> dict[str, Any]:
    return await imports.set_mapping(ctx, import_id, data.mapping)


@post("/imports/{import_id:uuid}/dry-run", summary="Check every row; write nothing",
      tags=[TAG], opt=IMPORT, status_code=202)
async def import_dry_run(ctx: CurrentContext, import_id: FromPath[UUID]) -> dict[str, Any]:
    return await imports.start(ctx, import_id, commit=False)


@post("/imports/{import_id:uuid}/commit", summary="Check, then write all rows or none",
      tags=[TAG], opt=IMPORT, status_code=202)
async def import_commit(ctx: CurrentContext, import_id: FromPath[UUID]) -> dict[str, Any]:
    return await imports.start(ctx, import_id, commit=True)


@get("/imports/{import_id:uuid}/errors", summary="The error report of an import (xlsx)",
     tags=[TAG], opt=IMPORT)
async def import_errors(ctx: CurrentContext, import_id: FromPath[UUID],
                        lang: Annotated[str | None, QueryParameter()] = None
                        ) -> Response[bytes]:
    locale = normalise_locale(lang) if lang else ctx.locale
    data = await imports.report_bytes(ctx, import_id, locale)
    return xlsx_response(data, f"import-errors-{str(import_id)[:8]}.xlsx")


IMPORT_HANDLERS = [import_template, import_upload, import_list, import_status, import_mapping,
                   import_dry_run, import_commit, import_errors]
