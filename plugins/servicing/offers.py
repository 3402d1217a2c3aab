"""What servicing offers other plugins: its products and their quotes.

Origination (applications) and contracts (the schedule attached to a contract) must not
import servicing's internals, so servicing answers `choose_provider("loan_products")` with
this object. The checks and messages are exactly the disbursement's: an application that
passes `quote` can be disbursed with the same terms.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from core.tenancy import Context
from plugins.servicing import loans, products
from plugins.servicing.response import to_contract

RANGE_KEYS = ("amount_min", "amount_max", "term_min", "term_max", "rate_min", "rate_max",
              "rate_default")


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    config = row["config"]
    return {"id": str(row["id"]), "code": row["code"], "name": row["name"],
            "active": row["active"], "version": row["version"],
            "method": config.get("method"), "frequency": config.get("frequency"),
            "rate_quote": config.get("rate_quote", "annual_percent"),
            **{key: str(config[key]) for key in RANGE_KEYS if key in config}}


class LoanProducts:
    """The provider: `list`, `get` and `quote` under the caller's context (its permissions)."""

    async def list(self, ctx: Context, active_only: bool = True) -> list[dict[str, Any]]:
        """The tenant's products (code, name, ranges), active ones unless told otherwise."""
        rows = await products.list_products(ctx)
        return [_summary(r) for r in rows if r["active"] or not active_only]

    async def get(self, ctx: Context, code: str) -> dict[str, Any]:
        """One product by code (NotFound otherwise)."""
        return _summary(await products.get_product(ctx, code))

    async def quote(self, ctx: Context, code: str, amount: Any, periods: Any,
                    annual_rate: Any = None, on: date | None = None) -> dict[str, Any]:
        """The schedule and APR of `amount` over `periods` at `annual_rate` (the product's
        quoted unit; its default when None), disbursed `on` (the business date): the same
        dict as `POST /products/{code}/quote`. Out-of-range values raise ValidationFailed
        naming `amount`, `periods` or `annual_rate` with the product's limits."""
        product = await products.get_product(ctx, code)
        rate = None if annual_rate in (None, "") else loans.money("annual_rate", annual_rate)
        schedule = products.quote(product["config"], loans.money("amount", amount),
                                  loans._int("periods", periods), rate,
                                  on or ctx.tenant.business_date)
        result = to_contract(schedule)
        result["product"] = _summary(product)
        result["annual_rate"] = str(rate if rate is not None
                                    else Decimal(product["config"]["rate_default"]))
        return result


PROVIDER = LoanProducts()
