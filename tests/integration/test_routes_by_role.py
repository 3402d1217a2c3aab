"""Every route of the OpenAPI document x every demo role: the answer follows the route's
declared permission (403 without it, never 401/403 with it), and no route is undeclared."""

from __future__ import annotations

import re
from typing import Any

from core.access import allows
from tests.conftest import login

ROLES = ("officer", "reviewer", "manager", "finance", "collector", "gm", "compliance", "admin")


def declared(app: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(method, OpenAPI path) -> the handler's opt, read from the app's routes."""
    out = {}
    for route in app.routes:
        for method, handler in getattr(route, "route_handler_map", {}).items():
            if method in ("HEAD", "OPTIONS"):
                continue
            path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)
            target = handler[0] if isinstance(handler, tuple) else handler
            out[(method.upper(), path)] = target.opt
    return out


async def test_every_route_and_role(client: Any, demo: Any) -> None:
    from core.records import create
    from tests.conftest import as_user

    tenant, passwords = demo
    app = client._transport.app
    doc = (await client.get("/api/v1/openapi.json")).json()
    opts = declared(app)
    admin = await as_user(tenant, "admin")
    any_customer = (await create(admin, "customer", {  # its own record: DELETE may run
        "kind": "company", "name": "路由测试公司", "credit_code": "91110000600037341L"}))["id"]
    params = {"record_id": any_customer, "token_id": "00000000-0000-4000-8000-000000000000",
              "key": "no_such_field", "field_key": "mobile", "slug": "no-such-tenant",
              "webhook_id": "00000000-0000-4000-8000-000000000000",
              "message_id": "00000000-0000-4000-8000-000000000000",
              "document_id": "00000000-0000-4000-8000-00000000d0c5",
              "code": "NOPE", "loan_id": "00000000-0000-4000-8000-000000000000",
              "transaction_id": "00000000-0000-4000-8000-0000000000f1",
              "application_id": "00000000-0000-4000-8000-0000000000a1", "product": "NOPE",
              "lead_id": "00000000-0000-4000-8000-00000000ead0",
              "entry_id": "00000000-0000-4000-8000-00000000b1ac",
              "instance_id": "00000000-0000-4000-8000-0000000000a2",
              "notification_id": "00000000-0000-4000-8000-0000000000a3",
              "task_id": "00000000-0000-4000-8000-0000000000a4",
              "contract_id": "00000000-0000-4000-8000-0000000000c7", "which": "signed",
              "tenant": "no-such-tenant",
              "import_id": "00000000-0000-4000-8000-00000000a001"}
    contexts = {role: await as_user(tenant, role) for role in ROLES}
    headers = {role: await login(client, tenant.slug, role, passwords[role]) for role in ROLES}
    checked = 0
    for path, operations in doc["paths"].items():
        for method in operations:
            opt = opts[(method.upper(), path)]
            assert opt.get("public") or opt.get("authenticated") or opt.get("permission"), \
                f"{method} {path} declares no access rule"
            url = re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path)
            for role in ROLES:
                ctx, h = contexts[role], headers[role]
                body = {} if method in ("post", "patch", "put") else None
                r = await client.request(method.upper(), url, headers=h, json=body)
                perm = opt.get("permission")
                perms = (perm,) if isinstance(perm, str) else perm or ()
                if perms and not all(allows(ctx, p) for p in perms):
                    assert r.status_code == 403, (method, path, role, r.status_code)
                else:
                    assert r.status_code not in (401, 403, 500), (method, path, role, r.text)
                checked += 1
            r = await client.request(method.upper(), url,
                                     json={} if method in ("post", "patch") else None)
            if not opt.get("public"):
                assert r.status_code == 401, (method, path, "anonymous", r.status_code)
    assert checked >= 14 * len(ROLES)
