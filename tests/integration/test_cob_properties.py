"""Properties of the book under any mix of nightly closes, repayments and reversals (on
SQLite, where each example gets a fresh tenant quickly): each loan's balances equal its
postings, the book balances, nothing paid exceeds what was charged, no receivable goes
negative, and asking to close an already closed date changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import records
from core.errors import ValidationFailed
from core.tenancy import tenant_scope
from plugins.servicing import cob, loans, products, repayments
from plugins.servicing.allocation import COMPONENTS
from plugins.servicing.tables import LoanTransaction
from tests.conftest import _tenant_factory
from tests.integration.test_cob import assert_book_equals_loans, fresh, state
from tests.integration.test_loans import CONFIG

STEP = st.one_of(
    st.tuples(st.just("close"), st.integers(1, 35)),
    st.tuples(st.just("repay"), st.integers(0, 2), st.integers(1, 400_000)),  # 分
    st.tuples(st.just("reverse"), st.integers(0, 7)),
)


async def _book(ages: list[int]) -> tuple[Any, list[uuid.UUID]]:
    ctx = await _tenant_factory()(plugins=["crm", "servicing"])
    await products.save_product(ctx, "XD01", "经营贷", {
        **CONFIG, "penalty": {"multiplier": "1.5", "compound": True, "grace_days": 2}})
    page = await records.list_records(ctx, "customer", {"kind": "individual"})
    customer = str(page.items[0]["id"])
    made = []
    for age in ages:
        on = ctx.tenant.business_date - timedelta(days=age)
        loan = await loans.disburse(ctx, {"customer_id": customer, "product": "XD01",
                                          "amount": "10000", "periods": 6,
                                          "disbursed_on": on.isoformat()})
        made.append(uuid.UUID(loan["id"]))
    return ctx, made


async def _nothing_overpaid(ctx: Any, loan_ids: list[uuid.UUID]) -> None:
    for loan_id in loan_ids:
        async with tenant_scope(ctx, write=False):
            _, installments = await loans.load(ctx, loan_id)
        for i in installments:
            for c in COMPONENTS:
                assert 0 <= i[f"{c}_paid"] <= i[c], (i["n"], c)


async def _play(ages: list[int], plan: list[tuple[Any, ...]]) -> None:
    ctx, loan_ids = await _book(ages)
    for step in plan:
        if step[0] == "close":
            for _ in range(step[1]):
                closed = ctx.tenant.business_date
                await cob.close_business_date(ctx)
                ctx = await fresh(ctx)
            before = await state(ctx)
            await cob.close_business_date(ctx, closed)  # already closed: changes nothing
            assert await state(ctx) == before
        elif step[0] == "repay":
            amount = str(Decimal(step[2]) / 100)
            try:
                await repayments.post_repayment(ctx, loan_ids[step[1] % len(loan_ids)],
                                                {"amount": amount})
            except ValidationFailed:
                pass  # a settled loan refuses; nothing was written (checked below)
        else:
            async with tenant_scope(ctx, write=False):
                standing = await LoanTransaction.select(LoanTransaction.id).where(
                    LoanTransaction.tenant_id == ctx.tenant_id,
                    LoanTransaction.kind == "repayment",
                    LoanTransaction.reversed_by.is_null()).order_by(
                    LoanTransaction.created_at).run()
            if standing:
                target = standing[step[1] % len(standing)]["id"]
                await repayments.reverse_repayment(ctx, target, "退票")
        await assert_book_equals_loans(ctx)
        await _nothing_overpaid(ctx, loan_ids)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ages=st.lists(st.integers(0, 220), min_size=1, max_size=3),
       plan=st.lists(STEP, min_size=1, max_size=7))
def test_any_mix_of_closes_repayments_and_reversals_keeps_the_book_equal_to_the_loans(
        sqlite: Any, ages: list[int], plan: list[tuple[Any, ...]]) -> None:
    asyncio.run(_play(ages, plan))
