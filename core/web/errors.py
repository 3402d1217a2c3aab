"""Errors as RFC 9457 problem details, in the caller's language (zh-CN first)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException

from core.errors import ValidationFailed, XindaiError
from core.i18n import t
from core.web.context import request_locale


def _problem(status: int, code: str, title: str, locale: str, **extra: Any) -> Response[Any]:
    body = {"type": f"https://xindai.invalid/problems/{code}", "title": title,
            "status": status, "code": code, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return Response(body, status_code=status, media_type="application/problem+json",
                    headers=headers)


def xindai_error(request: Request[Any, Any, Any], exc: XindaiError) -> Response[Any]:
    locale = request_locale(request)
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationFailed):
        extra["errors"] = [e.as_dict(locale) for e in exc.errors]
        extra["detail"] = "; ".join(e.message(locale) for e in exc.errors)
    extra.update(getattr(exc, "details", None) or {})  # e.g. the records a 409 collides with
    return _problem(exc.status, exc.code, exc.message(locale), locale, **extra)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    locale = request_locale(request)
    if isinstance(exc, NotFoundException):
        return _problem(404, "not_found", t("not_found", locale), locale)
    if isinstance(exc, ValidationException):
        return _problem(400, "bad_request", t("bad_request", locale), locale,
                        detail=str(exc.detail))
    return _problem(exc.status_code, "http_error", str(exc.detail), locale)


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    import structlog
    from asyncpg.exceptions import DataError, InsufficientPrivilegeError

    if isinstance(exc, InsufficientPrivilegeError):  # an RLS policy refused a write
        locale = request_locale(request)
        return _problem(403, "tenant_scope", t("tenant_scope", locale), locale)
    if isinstance(exc, DataError):  # a value the database refused (e.g. too long)
        locale = request_locale(request)
        return _problem(422, "bad_value", t("bad_value", locale), locale)

    structlog.get_logger().exception("unhandled error", path=request.url.path)
    locale = request_locale(request)
    return _problem(500, "internal", t("internal", locale), locale)
