"""The servicing API under /api/v1: products and quotes, loans and disbursement, the ledger.

Disbursement moves money, so it requires an `Idempotency-Key` (the kernel's middleware
stores and replays the first answer). The repayment preview and the statement only read
(the statement download is audited), so they need no key."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from litestar import Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from core.access import require
from core.web.context import CurrentContext
from plugins.servicing import (
    classification,
    cob,
    ledger,
    loans,
    payoff,
    prepayment,
    preview,
    products,
    repayments,
    reschedule,
    statement,
    writeoff,
)
from plugins.servicing.response import to_contract

TAG = "Servicing"


@get("/products", tags=[TAG], summary="List loan products", opt={"permission": "product.read"})
async def list_products(ctx: CurrentContext) -> list[dict[str, Any]]:
    return [_product(p) for p in await products.list_products(ctx)]


@get("/products/{code:str}", tags=[TAG], summary="Get a loan product",
     opt={"permission": "product.read"})
async def get_product(ctx: CurrentContext, code: FromPath[str]) -> dict[str, Any]:
    return _product(await products.get_product(ctx, code))


@put("/products/{code:str}", tags=[TAG], summary="Create or change a loan product",
     opt={"permission": "product.manage"})
async def put_product(ctx: CurrentContext, code: FromPath[str],
                      data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"name": ..., "active": true, "config": {...}}`: see docs/servicing.md."""
    return _product(await products.save_product(
        ctx, code, str(data.get("name") or code), data.get("config") or {},
        bool(data.get("active", True))))


@post("/products/{code:str}/quote", tags=[TAG], summary="Quote a schedule and its APR",
      opt={"permission": "product.read"}, status_code=200)
async def quote(ctx: CurrentContext, code: FromPath[str],
                data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"amount": "100000", "periods": 12, "annual_rate": "12" (optional),
    "disbursed_on": "2026-11-23" (optional: the business date)}` -> the schedule contract."""
    product = await products.get_product(ctx, code)
    on = loans._date("disbursed_on", data.get("disbursed_on"), ctx.tenant.business_date)
    rate = None if data.get("annual_rate") in (None, "") else loans.money(
        "annual_rate", data["annual_rate"])
    schedule = products.quote(product["config"], loans.money("amount", data.get("amount")),
                              loans._int("periods", data.get("periods")), rate, on)
    return to_contract(schedule)


@post("/loans", tags=[TAG], summary="Disburse a loan",
      opt={"permission": "loan.disburse", "idempotent": True}, status_code=201)
async def disburse(ctx: CurrentContext, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"customer_id", "product", "amount", "periods", "annual_rate"?, "disbursed_on"?,
    "channel"?, "reference"?}`; requires `Idempotency-Key`."""
    return await loans.disburse(ctx, data)


@post("/loans/{loan_id:uuid}/repayments", tags=[TAG], summary="Post a repayment",
      opt={"permission": "loan.repay", "idempotent": True}, status_code=201)
async def repay(ctx: CurrentContext, loan_id: FromPath[UUID],
                data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"amount": "888.49", "paid_on"?, "channel": "cash"|"transfer", "reference"?}`,
    allocated by the product's order; requires `Idempotency-Key`. Answers the loan."""
    return await repayments.post_repayment(ctx, loan_id, data)


@post("/loans/{loan_id:uuid}/repayments/preview", tags=[TAG],
      summary="Preview a repayment's allocation", opt={"permission": "loan.repay"},
      status_code=200)
async def repay_preview(ctx: CurrentContext, loan_id: FromPath[UUID],
                        data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """The same body as posting a repayment -> where it would go, per installment and
    component, and what would be kept as credit; refused where posting would refuse.
    Writes nothing, so no `Idempotency-Key`."""
    return await preview.preview_repayment(ctx, loan_id, data)


@post("/loans/transactions/{transaction_id:uuid}/reversal", tags=[TAG],
      summary="Reverse a repayment", opt={"permission": "loan.repay", "idempotent": True},
      status_code=201)
async def reverse(ctx: CurrentContext, transaction_id: FromPath[UUID],
                  data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"reason": "退票"}`: undoes the repayment; later repayments are allocated again
    without it. Requires `Idempotency-Key`. Answers the loan."""
    return await repayments.reverse_repayment(ctx, transaction_id, str(data.get("reason") or ""))


@post("/loans/{loan_id:uuid}/prepayments", tags=[TAG], summary="Post a prepayment",
      opt={"permission": "loan.repay", "idempotent": True}, status_code=201)
async def prepay(ctx: CurrentContext, loan_id: FromPath[UUID],
                 data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"amount"? | "full": true, "paid_on"?, "channel", "reference"?, "mode"?:
    "reduce_term"|"reduce_installment"}`: pays what is due, the running period's accrued
    interest, the prepayment fee, then principal; a new schedule version (or the loan
    settled). Requires `Idempotency-Key`. Answers the loan with the split."""
    return await prepayment.prepay(ctx, loan_id, data)


@post("/loans/{loan_id:uuid}/prepayments/quote", tags=[TAG],
      summary="Quote a prepayment (writes nothing)", opt={"permission": "loan.read"},
      status_code=200)
async def prepay_quote(ctx: CurrentContext, loan_id: FromPath[UUID],
                       data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """The same body as a prepayment: the split and the new schedule it would make."""
    return await prepayment.quote(ctx, loan_id, data)


@post("/loans/{loan_id:uuid}/reschedule", tags=[TAG], summary="Reschedule a loan",
      opt={"permission": "loan.reschedule", "idempotent": True}, status_code=201)
async def reschedule_loan(ctx: CurrentContext, loan_id: FromPath[UUID],
                          data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"annual_rate"?, "extra_periods"?, "reason"}`: a new schedule version for the
    principal not yet due. Requires `Idempotency-Key`. Answers the loan."""
    return await reschedule.reschedule(ctx, loan_id, data)


@post("/loans/{loan_id:uuid}/write-off", tags=[TAG], summary="Write a loan off",
      opt={"permission": "loan.write_off", "idempotent": True}, status_code=201)
async def write_off(ctx: CurrentContext, loan_id: FromPath[UUID],
                    data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"reason"}`: the loan's balances against 1304. Requires `Idempotency-Key`."""
    return await writeoff.write_off(ctx, loan_id, data)


@post("/loans/{loan_id:uuid}/recoveries", tags=[TAG], summary="Post a recovery",
      opt={"permission": "loan.repay", "idempotent": True}, status_code=201)
async def recover(ctx: CurrentContext, loan_id: FromPath[UUID],
                  data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"amount", "paid_on"?, "channel", "reference"?}` for a written-off loan: Dr 1002 /
    Cr 1304. Requires `Idempotency-Key`. Answers the loan."""
    return await writeoff.recover(ctx, loan_id, data)


@get("/loans", tags=[TAG], summary="List loans", opt={"permission": "loan.read"})
async def list_loans(ctx: CurrentContext, customer_id: FromQuery[UUID | None] = None,
                     status: FromQuery[str | None] = None) -> list[dict[str, Any]]:
    return await loans.list_loans(ctx, customer_id, status)


@get("/loans/{loan_id:uuid}", tags=[TAG], summary="Get a loan with its schedule",
     opt={"permission": "loan.read"})
async def get_loan(ctx: CurrentContext, loan_id: FromPath[UUID]) -> dict[str, Any]:
    return await loans.get_loan(ctx, loan_id)


@get("/loans/{loan_id:uuid}/payoff", tags=[TAG], summary="Payoff quote for a date",
     opt={"permission": "loan.read"})
async def payoff_quote(ctx: CurrentContext, loan_id: FromPath[UUID],
                       on: FromQuery[date | None] = None) -> dict[str, Any]:
    """What settles the loan on `on` (default: the business date): overdue amounts, the
    principal not yet due, interest accrued in the running period, the prepayment fee."""
    return await payoff.payoff(ctx, loan_id, on)


@get("/loans/{loan_id:uuid}/statement", tags=[TAG], summary="Loan statement (PDF or Excel)",
     opt={"permission": "loan.read"}, media_type="application/octet-stream")
async def loan_statement(ctx: CurrentContext, loan_id: FromPath[UUID],
                         fmt: Annotated[str | None, QueryParameter(name="format")] = None
                         ) -> Response[bytes]:
    """`?format=pdf` (default) or `xlsx`: header, balances, schedule and transactions as of
    the business date, in the caller's language; the download is recorded in the audit log."""
    data, media_type, disposition = await statement.statement(ctx, loan_id, fmt)
    return Response(content=data, media_type=media_type, status_code=200, headers={
        "Content-Disposition": disposition, "Cache-Control": "no-store"})


@get("/ledger/trial-balance", tags=[TAG], summary="Trial balance",
     opt={"permission": "ledger.read"})
async def trial_balance(ctx: CurrentContext, until: FromQuery[date | None] = None
                        ) -> dict[str, Any]:
    require(ctx, "ledger.read")
    rows = await ledger.trial_balance(ctx, until)
    return {"accounts": [{**r, "debit": loans.yuan(r["debit"]),
                          "credit": loans.yuan(r["credit"])} for r in rows],
            "total_debit": loans.yuan(sum(r["debit"] for r in rows)),
            "total_credit": loans.yuan(sum(r["credit"] for r in rows))}


@post("/cob/runs", tags=[TAG], summary="Close the business date (in the background)",
      opt={"permission": "cob.run"}, status_code=202)
async def run_cob(ctx: CurrentContext, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"business_date": "2026-11-23"}` (optional; it must be the tenant's business date:
    a day cannot be skipped). Enqueues the close; follow it in GET /cob/runs or the job."""
    from core import jobs

    return await cob.enqueue_close(ctx, data.get("business_date"), jobs.enqueue)


@get("/cob/runs", tags=[TAG], summary="Close-of-business runs, newest first",
     opt={"permission": "loan.read"})
async def cob_runs(ctx: CurrentContext) -> dict[str, Any]:
    return {"business_date": (await cob.refreshed(ctx)).tenant.business_date.isoformat(),
            "runs": await cob.list_runs(ctx)}


@post("/loans/{loan_id:uuid}/classification", tags=[TAG],
      summary="Override the five-category classification (with a reason)",
      opt={"permission": "loan.classify"}, status_code=200)
async def classify(ctx: CurrentContext, loan_id: FromPath[UUID],
                   data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    """`{"classification": "doubtful" | null (clear), "reason": "..."}`: never better than
    the floor from days past due."""
    return await classification.override(ctx, loan_id, data.get("classification") or None,
                                         str(data.get("reason") or ""))


@get("/loans/{loan_id:uuid}/classification", tags=[TAG],
     summary="Classification history of a loan", opt={"permission": "loan.read"})
async def classification_history(ctx: CurrentContext, loan_id: FromPath[UUID]
                                 ) -> list[dict[str, Any]]:
    return await classification.history(ctx, loan_id)


@get("/ledger/accounts/{code:str}/statement", tags=[TAG],
     summary="Account statement: opening balance, postings with running balance, closing",
     opt={"permission": "ledger.read"})
async def account_statement(ctx: CurrentContext, code: FromPath[str],
                            start: FromQuery[date | None] = None,
                            end: FromQuery[date | None] = None,
                            loan_id: FromQuery[UUID | None] = None) -> dict[str, Any]:
    """`?start=&end=` (dates, inclusive) and `loan_id` (one loan's postings); balances are
    debit minus credit, in yuan."""
    found = await ledger.account_statement(ctx, code, start, end, loan_id)
    return {**found, "opening": loans.yuan(found["opening"]),
            "closing": loans.yuan(found["closing"]),
            "lines": [{**line, "posted_on": str(line["posted_on"]),
                       "loan_id": str(line["loan_id"]) if line["loan_id"] else None,
                       "debit": loans.yuan(line["debit"]), "credit": loans.yuan(line["credit"]),
                       "balance": loans.yuan(line["balance"])} for line in found["lines"]]}


def _product(p: dict[str, Any]) -> dict[str, Any]:
    return {"code": p["code"], "name": p["name"], "active": p["active"],
            "version": p["version"], "config": p["config"]}


ROUTES = [list_products, get_product, put_product, quote, disburse, repay, repay_preview,
          reverse, prepay, prepay_quote, reschedule_loan, write_off, recover, list_loans,
          get_loan, payoff_quote, loan_statement, classify, classification_history, run_cob,
          cob_runs, trial_balance, account_statement]
