"""The `products` section of a tenant pack: loan products by code, loaded all or nothing
with the pack, and exported back in the same shape."""

from __future__ import annotations

from typing import Any

from core.declarations import PackSource
from core.errors import ValidationFailed
from core.packs import PackError
from core.tenancy import Context
from plugins.servicing import products


async def load_products(ctx: Context, data: Any, source: PackSource) -> None:
    """`products: {CODE: {name: ..., active: true, config: {...}}}`."""
    if not isinstance(data, dict):
        raise PackError(source.path, source.lines.get("products"),
                        "products 应为“代码: 产品”的映射 / products must map codes to products")
    lines = getattr(data, "key_lines", {}) or {}
    for code, spec in data.items():
        line = lines.get(code) or source.lines.get("products")
        if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
            raise PackError(source.path, line, f"产品 {code} 需要 name 和 config / product "
                            f"{code} needs a name and a config")
        try:
            await products.save_product(ctx, str(code), str(spec.get("name") or code),
                                        spec["config"], bool(spec.get("active", True)))
        except ValidationFailed as exc:
            raise PackError(source.path, line, f"产品 {code}：" + "；".join(
                e.message("zh-CN") for e in exc.errors) + " / product " + f"{code}: " + "; ".join(
                e.message("en") for e in exc.errors)) from None


async def export_products(ctx: Context) -> Any:
    rows = await products.list_products(ctx)
    return {r["code"]: {"name": r["name"], "active": r["active"], "config": r["config"]}
            for r in rows} or None


async def load_loans(ctx: Context, data: Any, source: PackSource) -> None:
    """`loans:` a list of loans to disburse after the records (demo and test data):
    `{customer: {resident_id: ...} | {credit_code: ...}, product, amount, periods,
    disbursed_on, paid_installments: N, write_off?: reason}`; the first N installments are repaid on their due
    dates through the same repayment path a cashier uses. Then the loans are closed through
    the day before the business date (cob.catch_up): accrual, penalty, days past due; and
    those with `write_off` are written off with that reason."""
    import uuid

    from core import records
    from core.errors import XindaiError
    from plugins.servicing import loans, repayments

    if not isinstance(data, list):
        raise PackError(source.path, source.lines.get("loans"),
                        "loans 应为列表 / loans must be a list")
    written_off: list[tuple[uuid.UUID, str, Any]] = []
    for i, spec in enumerate(data):
        line = getattr(spec, "line", None) or source.lines.get("loans")
        try:
            who = dict(spec.get("customer") or {})
            if len(who) != 1 or next(iter(who)) not in ("resident_id", "credit_code"):
                raise PackError(source.path, line, "customer 须为 {resident_id: ...} 或 "
                                "{credit_code: ...} / customer must name a resident_id or "
                                "a credit_code")
            field, value = next(iter(who.items()))
            if field == "resident_id":  # secret: found through its blind index
                found = await records.find_ids(ctx, "customer", field, str(value))
            else:
                page = await records.list_records(ctx, "customer", {field: str(value)})
                found = [str(r["id"]) for r in page.items]
            if len(found) != 1:
                raise PackError(source.path, line, f"找不到客户 / no customer with {field} "
                                f"{value}")
            loan = await loans.disburse(ctx, {
                "customer_id": found[0], "product": spec.get("product"),
                "amount": str(spec.get("amount")), "periods": spec.get("periods"),
                "annual_rate": spec.get("annual_rate"),
                "disbursed_on": str(spec.get("disbursed_on") or "")})
            for installment in loan["installments"][:int(spec.get("paid_installments", 0))]:
                await repayments.post_repayment(ctx, uuid.UUID(loan["id"]), {
                    "amount": installment["total"], "paid_on": installment["due_on"],
                    "channel": "transfer", "reference": f"DEMO-{loan['number']}"})
            if spec.get("write_off"):
                written_off.append((uuid.UUID(loan["id"]), str(spec["write_off"]), line))
        except ValidationFailed as exc:
            raise PackError(source.path, line, f"loans[{i + 1}]：" + "；".join(
                e.message("zh-CN") for e in exc.errors) + " / " + "; ".join(
                e.message("en") for e in exc.errors)) from None
        except XindaiError as exc:
            raise PackError(source.path, line, f"loans[{i + 1}]：{exc.message('zh-CN')} / "
                            f"{exc.message('en')}") from None
    from plugins.servicing import cob, writeoff

    await cob.catch_up(ctx)  # back-dated loans reach the state the nightly closes give
    for loan_id, reason, line in written_off:  # with their accrual and penalty to date
        try:
            await writeoff.write_off(ctx, loan_id, {"reason": reason})
        except ValidationFailed as exc:
            raise PackError(source.path, line, "write_off：" + "；".join(
                e.message("zh-CN") for e in exc.errors)) from None


async def export_loans(ctx: Context) -> Any:
    """Loans are business records, not configuration: a pack export leaves them out."""
    return None


async def load_ledger(ctx: Context, data: Any, source: PackSource) -> None:
    """`ledger: {accounts: {"1002": "银行存款（工行）", "6051": {name: 其他业务收入, kind:
    income}}}`: rename accounts of the chart and add the lender's own."""
    from plugins.servicing import ledger

    accounts = data.get("accounts") if isinstance(data, dict) else None
    if not isinstance(accounts, dict):
        raise PackError(source.path, source.lines.get("ledger"),
                        "ledger 应包含 accounts 映射 / ledger needs an accounts mapping")
    try:
        await ledger.configure_chart(ctx, dict(accounts))
    except ValidationFailed as exc:
        raise PackError(source.path, source.lines.get("ledger"), "；".join(
            e.message("zh-CN") for e in exc.errors) + " / " + "; ".join(
            e.message("en") for e in exc.errors)) from None


async def export_ledger(ctx: Context) -> Any:
    from plugins.servicing import ledger

    return {"accounts": {a["code"]: {"name": a["name"], "kind": a["kind"]}
                         for a in await ledger.chart(ctx)}}
