"""Disbursing an application (进件): only once its contract is signed, with exactly the
approved terms whatever a form sends, at most once; the application then reads disbursed."""

from __future__ import annotations

from typing import Any

import pytest

from core import records
from core.errors import ValidationFailed
from plugins.origination import applications
from plugins.servicing import loans
from tests.integration.test_applications import form, kyc, setup


async def approved(ctx: Any, customer: str) -> dict[str, Any]:
    await kyc(ctx, customer)
    app = await applications.create(ctx, form(customer, amount="300000", periods=24))
    await applications.submit(ctx, app["id"])
    return await applications.decided(ctx, app["id"], "approved", "同意", "u-2")


async def test_an_application_is_disbursed_once_with_its_approved_terms(
        kernel: Any, new_tenant: Any) -> None:
    ctx, customer = await setup(new_tenant)
    app = await approved(ctx, customer)
    with pytest.raises(ValidationFailed) as info:  # approved, but no signed contract yet
        await loans.disburse(ctx, {"application_id": app["id"]})
    err = info.value.errors[0]
    assert err.field == "application_id" and app["number"] in err.message("zh-CN")
    assert "合同签署后" in err.message("zh-CN") and "contract" in err.message("en")
    await applications.on_contract_signed(ctx, {"contract_id": "c-1",
                                                "application_id": app["id"]})
    loan = await loans.disburse(ctx, {"application_id": app["id"], "amount": "999999",
                                      "periods": 3, "customer_id": "someone else"})
    assert (loan["amount"], loan["periods"]) == ("300000.00", 24), loan
    assert str(loan["customer_id"]) == customer
    assert str(loan["application_id"]) == app["id"]
    await applications.on_loan_disbursed(ctx, {"application_id": app["id"],
                                               "loan_id": str(loan["id"])})
    assert (await records.get(ctx, "application", app["id"]))["status"] == "disbursed"
    with pytest.raises(ValidationFailed) as info:
        await loans.disburse(ctx, {"application_id": app["id"]})
    assert "已放款" in info.value.errors[0].message("zh-CN")
