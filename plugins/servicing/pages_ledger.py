"""The ledger screens (总账; permission ledger.read):

    GET /servicing/ledger?until=             trial balance (试算平衡表) as of a date
    GET /servicing/ledger/{code}?start=&end= account statement (明细账) with running balance

Figures come from plugins.servicing.ledger; the pages only format them (yuan, never float).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from core.web.context import CurrentContext
from core.web.ui.render import render
from plugins.servicing import ledger
from plugins.servicing.loans import yuan
from plugins.servicing.pages import money

UI = {"include_in_schema": False}
LEDGER = {"permission": "ledger.read"}


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@get("/servicing/ledger", opt=LEDGER, **UI)
async def ledger_page(request: Request[Any, Any, Any], ctx: CurrentContext) -> Response[Any]:
    until = _day(request.query_params.get("until"))
    rows = await ledger.trial_balance(ctx, until)
    accounts = [{**r, "debit": yuan(r["debit"]), "credit": yuan(r["credit"]),
                 "balance": yuan(r["debit"] - r["credit"])} for r in rows]
    return render(request, "servicing/ledger.html", accounts=accounts, money=money,
                  until=until.isoformat() if until else "",
                  total_debit=yuan(sum(r["debit"] for r in rows)),
                  total_credit=yuan(sum(r["credit"] for r in rows)),
                  business_date=ctx.tenant.business_date.isoformat())


@get("/servicing/ledger/{code:str}", opt=LEDGER, **UI)
async def account_page(request: Request[Any, Any, Any], ctx: CurrentContext,
                       code: FromPath[str]) -> Response[Any]:
    start = _day(request.query_params.get("start"))
    end = _day(request.query_params.get("end"))
    found = await ledger.account_statement(ctx, code, start, end, limit=500)
    lines = [{**line, "posted_on": str(line["posted_on"]), "debit": yuan(line["debit"]),
              "credit": yuan(line["credit"]), "balance": yuan(line["balance"])}
             for line in found["lines"]]
    return render(request, "servicing/account.html", account=found, lines=lines, money=money,
                  opening=yuan(found["opening"]), closing=yuan(found["closing"]),
                  start=start.isoformat() if start else "", end=end.isoformat() if end else "")


LEDGER_PAGES = [ledger_page, account_page]
