"""The double-entry general ledger (总账) of a tenant: a chart of accounts and balanced
journal entries. Every money movement of servicing posts here; a loan's balances always
equal the sum of its postings.

An entry carries a key unique per tenant (e.g. `disbursement:<transaction id>`), so posting
the same business fact twice is refused by the database, not merely avoided by the caller.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from core.errors import Conflict, FieldError, ValidationFailed
from core.i18n import register_messages
from core.tenancy import Context, tenant_scope
from plugins.servicing.tables import GlAccount, JournalEntry, Posting

KINDS = ("asset", "liability", "equity", "income", "expense")

# A small-loan company's chart (小额贷款公司会计科目), seeded for each tenant; a pack may
# replace names or add accounts. Codes follow the Chinese accounting standards' numbering.
DEFAULT_CHART: tuple[tuple[str, str, str], ...] = (
    ("1002", "银行存款", "asset"),
    ("1303", "贷款", "asset"),
    ("1132", "应收利息", "asset"),
    ("1133", "应收罚息", "asset"),
    ("1221", "其他应收款（应收分期手续费）", "asset"),
    ("1304", "贷款损失准备", "asset"),
    ("2241", "其他应付款（客户溢缴款）", "liability"),
    ("6011", "利息收入", "income"),
    ("6012", "罚息收入", "income"),
    ("6021", "手续费及佣金收入", "income"),
    ("6701", "资产减值损失", "expense"),
)
BANK, LOANS, INTEREST_RECEIVABLE, PENALTY_RECEIVABLE = "1002", "1303", "1132", "1133"
ALLOWANCE, CUSTOMER_CREDIT, FEE_RECEIVABLE = "1304", "2241", "1221"
INTEREST_INCOME, PENALTY_INCOME, FEE_INCOME, IMPAIRMENT = "6011", "6012", "6021", "6701"


register_messages({
    "ledger_unbalanced": {
        "zh-CN": "凭证借贷不平衡：借方 {debit} 分，贷方 {credit} 分",
        "en": "the entry does not balance: debits {debit} fen, credits {credit} fen"},
    "ledger_posted": {"zh-CN": "该业务已记账（{key}）", "en": "already posted ({key})"},
    "ledger_unknown_account": {
        "zh-CN": "会计科目不存在：{account}", "en": "unknown ledger account: {account}"},
})


@dataclass(frozen=True)
class Line:
    """One line of an entry: 分 debited or credited to an account."""

    account: str
    debit: int = 0
    credit: int = 0


class Unbalanced(ValidationFailed):
    """An entry whose debits and credits differ: a programming error, never written."""


async def seed_chart(ctx: Context, chart: tuple[tuple[str, str, str], ...] = DEFAULT_CHART
                     ) -> int:
    """Create the accounts a tenant lacks; returns how many were added."""
    async with tenant_scope(ctx):
        have = {r["code"] for r in await GlAccount.select(GlAccount.code).where(
            GlAccount.tenant_id == ctx.tenant_id).run()}
        new = [GlAccount(tenant_id=ctx.tenant_id, code=code, name=name, kind=kind)
               for code, name, kind in chart if code not in have]
        if new:
            await GlAccount.insert(*new).run()
    return len(new)


register_messages({
    "ledger_account_invalid": {
        "zh-CN": "会计科目 {account} 无效：代码为 4–20 位数字，名称不能为空，类别为 asset、"
                 "liability、equity、income 或 expense；内置科目的类别不能改",
        "en": "invalid ledger account {account}: a code of 4 to 20 digits, a name, and a kind "
              "of asset, liability, equity, income or expense; a built-in account keeps its kind"},
})


async def configure_chart(ctx: Context, accounts: dict[str, Any]) -> int:
    """Rename accounts and add new ones: `{code: name}` or `{code: {name, kind}}` (a new
    account needs its kind; the built-in ones keep theirs, since postings depend on them).
    Returns how many accounts were written."""
    builtin = {code: kind for code, _, kind in DEFAULT_CHART}
    clean: list[tuple[str, str, str | None]] = []
    for code, spec in accounts.items():
        name, kind = (spec, None) if isinstance(spec, str) else (
            (spec or {}).get("name"), (spec or {}).get("kind"))
        code = str(code)
        ok = code.isdigit() and 4 <= len(code) <= 20 and isinstance(name, str) and name.strip()
        ok = ok and (kind is None or kind in KINDS) and (
            code not in builtin or kind in (None, builtin[code]))
        if not ok:
            raise ValidationFailed([FieldError("account", "ledger_account_invalid",
                                               {"account": code})])
        clean.append((code, name.strip()[:100], kind))
    await seed_chart(ctx)
    async with tenant_scope(ctx):
        have = {r["code"] for r in await GlAccount.select(GlAccount.code).where(
            GlAccount.tenant_id == ctx.tenant_id).run()}
        for code, name, kind in clean:
            if code in have:
                await GlAccount.update({GlAccount.name: name}).where(
                    GlAccount.tenant_id == ctx.tenant_id, GlAccount.code == code).run()
            elif kind is None:
                raise ValidationFailed([FieldError("account", "ledger_account_invalid",
                                                   {"account": code})])
            else:
                await GlAccount.insert(GlAccount(tenant_id=ctx.tenant_id, code=code,
                                                 name=name, kind=kind)).run()
    return len(clean)


async def chart(ctx: Context) -> list[dict[str, Any]]:
    async with tenant_scope(ctx, write=False):
        return await GlAccount.select(GlAccount.code, GlAccount.name, GlAccount.kind).where(
            GlAccount.tenant_id == ctx.tenant_id).order_by(GlAccount.code).run()


async def post(ctx: Context, key: str, posted_on: date, lines: list[Line], memo: str = "",
               loan_id: uuid.UUID | None = None,
               transaction_id: uuid.UUID | None = None) -> uuid.UUID:
    """Write one balanced entry in ctx's transaction; refuses an unbalanced or empty one,
    a negative line and an unknown account."""
    debit = sum(line.debit for line in lines)
    credit = sum(line.credit for line in lines)
    if not lines or debit != credit or debit <= 0 or any(
            line.debit < 0 or line.credit < 0 for line in lines):
        raise Unbalanced([FieldError("lines", "ledger_unbalanced",
                                     {"debit": debit, "credit": credit})])
    async with tenant_scope(ctx):
        known = {r["code"] for r in await GlAccount.select(GlAccount.code).where(
            GlAccount.tenant_id == ctx.tenant_id,
            GlAccount.code.is_in(sorted({line.account for line in lines}))).run()}
        unknown = sorted({line.account for line in lines} - known)
        if unknown:
            raise ValidationFailed([FieldError("account", "ledger_unknown_account",
                                               {"account": ", ".join(unknown)})])
        if await JournalEntry.exists().where(JournalEntry.tenant_id == ctx.tenant_id,
                                             JournalEntry.key == key).run():
            raise Conflict("ledger_posted", key=key)  # the unique index also refuses a race
        entry = JournalEntry(tenant_id=ctx.tenant_id, key=key, posted_on=posted_on,
                             loan_id=loan_id, transaction_id=transaction_id, memo=memo[:200])
        await JournalEntry.insert(entry).run()
        await Posting.insert(*[
            Posting(tenant_id=ctx.tenant_id, entry_id=entry.id, account_code=line.account,
                    loan_id=loan_id, debit=line.debit, credit=line.credit)
            for line in lines if line.debit or line.credit]).run()
    return entry.id


async def balances(ctx: Context, loan_id: uuid.UUID | None = None,
                   until: date | None = None) -> dict[str, int]:
    """Debit minus credit per account, for the tenant or one loan, up to a date."""
    from core.db import fetch

    where = "p.tenant_id = {}"
    args: list[Any] = [ctx.tenant_id]
    if loan_id is not None:
        where += " AND p.loan_id = {}"
        args.append(loan_id)
    if until is not None:
        where += " AND e.posted_on <= {}"
        args.append(until)
    async with tenant_scope(ctx, write=False):
        rows = await fetch(
            Posting._meta.db,
            "SELECT p.account_code AS code, SUM(p.debit) AS debit, SUM(p.credit) AS credit "
            "FROM posting p JOIN journal_entry e ON e.id = p.entry_id AND e.tenant_id = "
            f"p.tenant_id WHERE {where} GROUP BY p.account_code ORDER BY p.account_code",
            *args)
    return {r["code"]: int(r["debit"] or 0) - int(r["credit"] or 0) for r in rows}


async def trial_balance(ctx: Context, until: date | None = None) -> list[dict[str, Any]]:
    """Each account with its debit and credit totals; the two columns' sums are equal."""
    from core.db import fetch

    args: list[Any] = [ctx.tenant_id]
    cut = ""
    if until is not None:
        cut = " AND e.posted_on <= {}"
        args.append(until)
    async with tenant_scope(ctx, write=False):
        accounts = await GlAccount.select().where(GlAccount.tenant_id == ctx.tenant_id) \
            .order_by(GlAccount.code).run()
        sums = {r["code"]: r for r in await fetch(
            Posting._meta.db,
            "SELECT p.account_code AS code, SUM(p.debit) AS debit, SUM(p.credit) AS credit "
            "FROM posting p JOIN journal_entry e ON e.id = p.entry_id AND e.tenant_id = "
            f"p.tenant_id WHERE p.tenant_id = {{}}{cut} GROUP BY p.account_code", *args)}
    return [{"code": a["code"], "name": a["name"], "kind": a["kind"],
             "debit": int((sums.get(a["code"]) or {}).get("debit") or 0),
             "credit": int((sums.get(a["code"]) or {}).get("credit") or 0)}
            for a in accounts]


async def account_statement(ctx: Context, code: str, start: date | None = None,
                            end: date | None = None, loan_id: uuid.UUID | None = None,
                            limit: int = 1000) -> dict[str, Any]:
    """An account's statement (明细账): the opening balance before `start`, each posting
    from `start` to `end` (for the tenant or one loan) with the running balance, and the
    closing balance. Balances are debit minus credit, in 分."""
    from datetime import timedelta

    from core.db import fetch

    async with tenant_scope(ctx, write=False):
        account = await GlAccount.select().where(GlAccount.tenant_id == ctx.tenant_id,
                                                 GlAccount.code == code).first().run()
        if account is None:
            raise ValidationFailed([FieldError("account", "ledger_unknown_account",
                                               {"account": code})])
        opening = 0 if start is None else (await balances(
            ctx, loan_id, start - timedelta(days=1))).get(code, 0)
        closing = (await balances(ctx, loan_id, end)).get(code, 0)
        where = "p.tenant_id = {} AND p.account_code = {}"
        args: list[Any] = [ctx.tenant_id, code]
        if loan_id is not None:
            where += " AND p.loan_id = {}"
            args.append(loan_id)
        if start is not None:
            where += " AND e.posted_on >= {}"
            args.append(start)
        if end is not None:
            where += " AND e.posted_on <= {}"
            args.append(end)
        lines = await fetch(
            Posting._meta.db,
            "SELECT e.posted_on, e.key, e.memo, p.loan_id, l.number, p.debit, p.credit "
            "FROM posting p JOIN journal_entry e ON e.id = p.entry_id AND e.tenant_id = "
            "p.tenant_id LEFT JOIN loan l ON l.id = p.loan_id AND l.tenant_id = p.tenant_id "
            f"WHERE {where} ORDER BY e.posted_on, e.created_at, p.id LIMIT {int(limit) + 1}",
            *args)
    balance = opening
    out = []
    for line in lines[:limit]:
        balance += int(line["debit"]) - int(line["credit"])
        out.append({"posted_on": line["posted_on"], "key": line["key"], "memo": line["memo"],
                    "loan_id": line["loan_id"], "loan_number": line["number"],
                    "debit": int(line["debit"]), "credit": int(line["credit"]),
                    "balance": balance})
    return {"code": code, "name": account["name"], "kind": account["kind"],
            "opening": opening, "lines": out, "closing": closing,
            "truncated": len(lines) > limit}
