"""`Idempotency-Key` for the API, implemented once: a middleware on the `/api/v1` router.

A route opts in through its `opt`, next to its access rule:

    @post("/payments", opt={"permission": "servicing.repay", "idempotent": True})

`True`: the header is required (400 without it); `"optional"`: used when the client sends
one. The middleware checks the route's guards first (a 401 or 403 leaves no key behind),
then claims the key (core.idempotency), runs the route **inside one tenant transaction**
that also stores the answer, and replays stored answers with `Idempotent-Replayed: true`.
2xx and 4xx answers are stored; a 4xx also undoes the route's writes (an error writes
nothing); a 5xx is neither stored nor kept, so the client may retry with the same key.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, Router
from litestar.params import HeaderParameter
from litestar.routes import HTTPRoute

from core import idempotency as idem
from core.errors import Conflict
from core.tenancy import Context, tenant_scope
from core.web.context import current_context

OPTIONAL = "optional"
MODES = (True, OPTIONAL)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def mode_of(handler: Any) -> Any:
    return handler.opt.get("idempotent") if handler is not None else None


class _Captured:
    """The route's ASGI messages, held back until the answer is stored."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def send(self, message: Any) -> None:
        self.messages.append(message)

    def answer(self) -> idem.Answer:
        start = next((m for m in self.messages if m["type"] == "http.response.start"), None)
        if start is None:
            raise RuntimeError("the route sent no response")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
        body = b"".join(m.get("body", b"") for m in self.messages
                        if m["type"] == "http.response.body")
        return idem.Answer(start["status"], headers, body)


class _Undo(Exception):
    """Roll the route's transaction back (its answer was an error)."""


def _replaying(body: bytes, receive: Any) -> Any:
    """A `receive` that hands the already-read body to the route once."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_replay(send: Any, answer: idem.Answer) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
    headers += [(b"content-length", str(len(answer.body)).encode()),
                (idem.REPLAYED_HEADER.lower().encode(), b"true")]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})


async def _run(app: Any, scope: Any, receive: Any, ctx: Context,
               claim: idem.Claim) -> _Captured:
    """Run the route and store its answer in the same transaction as its writes."""
    captured = _Captured()
    answer: idem.Answer | None = None
    try:
        try:
            async with tenant_scope(ctx):  # the route's own tenant_scope joins this one
                await app(scope, receive, captured.send)
                answer = captured.answer()
                if answer.status >= 400:
                    raise _Undo
                await idem.complete(ctx, claim, answer)
        except _Undo:
            assert answer is not None
            if answer.status < 500:
                await idem.complete(ctx, claim, answer)  # the error is the answer to the key
            else:
                await idem.release(ctx, claim)  # not stored: the client may retry
    except idem.Fenced:
        raise Conflict("idempotency_in_progress", key=claim.key) from None
    except BaseException:
        await _release_quietly(ctx, claim)
        raise
    return captured


async def _release_quietly(ctx: Context, claim: idem.Claim) -> None:
    try:
        await idem.release(ctx, claim)
    except Exception:  # noqa: BLE001 - the original failure matters more; the lease frees it
        import structlog

        structlog.get_logger("xindai.idempotency").exception("release failed")


class IdempotencyMiddleware:
    """ASGI middleware: passes through unless the matched route declares `idempotent`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        handler = scope.get("route_handler")
        mode = mode_of(handler) if scope["type"] == "http" else None
        if not mode:
            await self.app(scope, receive, send)
            return
        request: Request[Any, Any, Any] = Request(scope, receive)
        raw = request.headers.get(idem.HEADER)
        if raw is None and mode == OPTIONAL:
            await self.app(scope, receive, send)
            return
        await handler.authorize_connection(request)  # 401/403 before any key is claimed
        key = idem.check_key(raw)
        ctx = await current_context(request)
        body = await request.body()
        method, path = scope["method"], scope["path"]
        fp = idem.fingerprint(method, path, scope.get("query_string", b"").decode("latin-1"),
                              body)
        outcome = await idem.begin(ctx, key, method, path, fp)
        if isinstance(outcome, idem.Answer):
            await _send_replay(send, outcome)
            return
        captured = await _run(self.app, scope, _replaying(body, receive), ctx, outcome)
        for message in captured.messages:
            await send(message)


def header_parameter(mode: Any) -> dict[str, Any]:
    """The header as a layered parameter, so the OpenAPI document shows it."""
    required = mode is True
    return {"idempotency_key": HeaderParameter(
        annotation=str if required else str | None, name=idem.HEADER, required=required,
        min_length=1, max_length=255, pattern=r"^[!-~]{1,255}$",
        description="每笔业务一个唯一值，重试时不变 / one unique value per operation, unchanged "
                    "on retries: the first answer is replayed (Idempotent-Replayed: true)",
    )}


def documented(handlers: list[Any]) -> list[Any]:
    """Wrap each idempotent handler in a router that documents the header in OpenAPI."""
    return [Router(path="/", route_handlers=[h], parameters=header_parameter(mode_of(h)))
            if mode_of(h) else h for h in handlers]


def check_routes(app: Litestar) -> None:
    """Refuse at start-up what cannot work: an idempotent route that is public (no caller to
    scope the key to), that only reads, or that declares an unknown mode."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            mode = mode_of(handler)
            if mode is None or mode is False:
                continue
            where = f"{route.path} {sorted(handler.http_methods)}"
            if mode not in MODES:
                raise ValueError(f"{where}: opt idempotent must be True or 'optional'")
            if handler.opt.get("public"):
                raise ValueError(f"{where}: a public route cannot be idempotent")
            if set(handler.http_methods) <= SAFE_METHODS:
                raise ValueError(f"{where}: only routes that change state are idempotent")
