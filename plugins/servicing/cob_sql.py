"""The set-based statements of the nightly close (日终), for PostgreSQL and SQLite.

Each chunk of loans (an id range) is closed for one day in one transaction by a handful of
statements whose cost grows with the rows they touch, not with round trips: the penalty of
overdue installments, the day's accrual, days past due, bucket and classification floor,
the ledger lines, the loan rows, and the roll to the next period. Money is integer 分 and
every division is an integer one rounded half up, so no value passes through float on
either engine (SQLite's julianday is only used for whole-day differences).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from core.db import fetch, is_postgres
from plugins.servicing.accrual import days_in_year

CLASS_ORDER = ("normal", "attention", "substandard", "doubtful", "loss")


def effective(floor: str, override: str | None) -> str:
    """The classification a loan carries: the worse of the floor and a manual override."""
    if not override:
        return floor
    return max(floor, override, key=CLASS_ORDER.index)


@dataclass(frozen=True)
class Dialect:
    """The few places where the two engines' SQL differs."""

    pg: bool

    def p(self, kind: str) -> str:
        """A typed parameter placeholder."""
        return "{}::" + kind if self.pg else "{}"

    def days(self, a: str, b: str) -> str:
        return f"({a} - {b})" if self.pg else f"CAST(julianday({a}) - julianday({b}) AS INTEGER)"

    def least(self, *args: str) -> str:
        return f"{'LEAST' if self.pg else 'MIN'}({', '.join(args)})"

    def greatest(self, *args: str) -> str:
        return f"{'GREATEST' if self.pg else 'MAX'}({', '.join(args)})"

    @property
    def new_id(self) -> str:
        if self.pg:
            return "gen_random_uuid()"
        return ("(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
                "substr(lower(hex(randomblob(2))), 2) || '-' || "
                "substr('89ab', 1 + abs(random()) % 4, 1) || "
                "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))")


def dialect(engine: Any) -> Dialect:
    return Dialect(is_postgres(engine))


TEMP_TABLES = {
    "cob_pen": ("installment_id {uuid}, loan_id {uuid}, version INTEGER, n INTEGER, "
                "due_on DATE, penalty_e6 BIGINT, compound_e6 BIGINT, penalty BIGINT, "
                "compound BIGINT"),
    "cob_loan": ("loan_id {uuid}, d_interest BIGINT, d_fees BIGINT, penalty BIGINT, "
                 "dpd INTEGER, bucket VARCHAR(8), floor VARCHAR(16), old_bucket VARCHAR(8), "
                 "old_floor VARCHAR(16), override VARCHAR(16), number VARCHAR(40)"),
}


async def prepare(engine: Any, d: Dialect) -> None:
    """Create (once per connection) and empty the work tables of a chunk."""
    for name, columns in TEMP_TABLES.items():
        cols = columns.format(uuid="UUID" if d.pg else "TEXT")
        suffix = " ON COMMIT DELETE ROWS" if d.pg else ""
        await fetch(engine, f"CREATE TEMP TABLE IF NOT EXISTS {name} ({cols}){suffix}")
        # empty even inside one transaction (a pack closes many days in its own)
        await fetch(engine, f"DELETE FROM {name}")


async def chunk_ranges(engine: Any, d: Dialect, tenant_id: Any, day: date, size: int
                       ) -> list[tuple[Any, Any]]:
    """The first and last id of each run of `size` consecutive loans behind `day`."""
    rows = await fetch(engine, f"""
        SELECT id, rn, total FROM (
          SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn, COUNT(*) OVER () AS total
          FROM loan WHERE tenant_id = {d.p('uuid')} AND status = 'active'
            AND last_closed_on < {d.p('date')}) x
        WHERE rn % {int(size)} = 1 OR rn % {int(size)} = 0 OR rn = total ORDER BY rn
    """, tenant_id, day)
    ranges, lo = [], None
    for r in rows:
        this = uuid.UUID(str(r["id"]))  # asyncpg's own UUID type, or SQLite's text
        if lo is None:
            lo = this
        if r["rn"] % size == 0 or r["rn"] == r["total"]:
            ranges.append((lo, this))
            lo = None
    return ranges


def _chunk(d: Dialect, alias: str = "l") -> str:
    """The loans of the chunk not yet closed for the day (parameters: tenant, lo, hi, day)."""
    return (f"{alias}.tenant_id = {d.p('uuid')} AND {alias}.id BETWEEN {d.p('uuid')} AND "
            f"{d.p('uuid')} AND {alias}.status = 'active' AND {alias}.last_closed_on < "
            f"{d.p('date')}")


@dataclass(frozen=True)
class Policy:
    """What the close applies besides each loan's own terms: bucket edges (M1 up to the
    first edge, ...), and per product the days past due that floor each classification."""

    bucket_edges: tuple[int, ...]
    floors: dict[str, dict[str, int]]  # product id -> {"attention": 1, ...}
    default_floor: dict[str, int]


def bucket_of(dpd: int, edges: tuple[int, ...]) -> str:
    """The bucket of `dpd` days past due, as `_bucket_case` computes it in SQL."""
    if dpd <= 0:
        return "M0"
    for i, edge in enumerate(edges, start=1):
        if dpd <= edge:
            return f"M{i}"
    return f"M{len(edges)}+"


def floor_of(dpd: int, thresholds: dict[str, int]) -> str:
    """The classification floor of `dpd` days past due, as `_floor_case` computes it."""
    for name in reversed(CLASS_ORDER[1:]):
        if dpd >= thresholds[name]:
            return name
    return "normal"


def _bucket_case(edges: tuple[int, ...]) -> str:
    parts = ["CASE WHEN w.dpd <= 0 THEN 'M0'"]
    for i, edge in enumerate(edges, start=1):
        parts.append(f"WHEN w.dpd <= {int(edge)} THEN 'M{i}'")
    parts.append(f"ELSE 'M{len(edges)}+' END")
    return " ".join(parts)


def _floor_case(thresholds: dict[str, int]) -> str:
    parts = ["CASE"]
    for name in reversed(CLASS_ORDER[1:]):
        parts.append(f"WHEN w.dpd >= {int(thresholds[name])} THEN '{name}'")
    parts.append("ELSE 'normal' END")
    return " ".join(parts)


def _classify(policy: Policy, d: Dialect) -> str:
    if not policy.floors:
        return _floor_case(policy.default_floor)
    cases = " ".join(f"WHEN '{pid}' THEN {_floor_case(t)}" for pid, t in policy.floors.items())
    cast = "::text" if d.pg else ""
    return f"CASE w.product_id{cast} {cases} ELSE {_floor_case(policy.default_floor)} END"


async def close_chunk(engine: Any, d: Dialect, tenant_id: Any, lo: Any, hi: Any, day: date,
                      policy: Policy) -> None:
    """Fill the work tables for the chunk's loans and charge the overdue installments'
    penalty (the caller posts the ledger lines and updates the loans from cob_loan)."""
    chunk = [tenant_id, lo, hi, day]
    year = days_in_year(day)
    basis = f"(CASE WHEN l.day_basis = 0 THEN {year} ELSE l.day_basis END)"
    overdue_days = d.days(d.p("date"), "i.due_on")
    times = (f"(CASE WHEN {overdue_days} = l.penalty_grace_days + 1 "
             "THEN l.penalty_grace_days + 1 ELSE 1 END)")

    def day_e6(amount: str, rate: str) -> str:  # one day on `amount` 分, in millionths of 分
        return f"{times} * ((2 * ({amount}) * {rate} + {basis}) / (2 * {basis}))"

    def fen(e6: str) -> str:
        return f"((2 * {e6} + 1000000) / 2000000)"

    charged = f"{d.days(d.p('date'), 'i.due_on')} > l.penalty_grace_days"
    await fetch(engine, f"""
        INSERT INTO cob_pen (installment_id, loan_id, version, n, due_on, penalty_e6,
                             compound_e6, penalty, compound)
        SELECT x.id, x.loan_id, x.schedule_version, x.n, x.due_on, x.pe6, x.ce6,
               {fen('x.pe6')} - {fen('x.old_pe6')}, {fen('x.ce6')} - {fen('x.old_ce6')}
        FROM (
          SELECT i.id, i.loan_id, i.schedule_version, i.n, i.due_on, i.penalty_e6 AS old_pe6,
                 i.compound_e6 AS old_ce6,
                 CASE WHEN {charged} THEN i.penalty_e6 + {day_e6(
                     'i.principal - i.principal_paid', 'l.penalty_rate_e6')}
                 ELSE i.penalty_e6 END AS pe6,
                 CASE WHEN {charged} THEN i.compound_e6 + {day_e6(
                     d.greatest('i.interest - i.interest_paid', '0'), 'l.compound_rate_e6')}
                 ELSE i.compound_e6 END AS ce6
          FROM loan l JOIN loan_installment i
            ON i.tenant_id = l.tenant_id AND i.loan_id = l.id
           AND i.schedule_version = l.schedule_version
          WHERE {_chunk(d)} AND i.settled_on IS NULL AND i.due_on <= {d.p('date')}
            AND i.loan_id BETWEEN {d.p('uuid')} AND {d.p('uuid')}
        ) x
    """, day, day, day, day, *chunk, day, lo, hi)
    if d.pg:  # a few rows or a few thousand: let the planner know before it joins
        await fetch(engine, "ANALYZE cob_pen")
    # by (loan, version, n): that index is in loan order, so a chunk's rows sit together,
    # where the random primary key would touch a page per row
    await fetch(engine, f"""
        UPDATE loan_installment SET penalty = loan_installment.penalty + p.penalty,
                                    compound = loan_installment.compound + p.compound,
                                    penalty_e6 = p.penalty_e6, compound_e6 = p.compound_e6
        FROM cob_pen p
        WHERE loan_installment.tenant_id = {d.p('uuid')}
          AND loan_installment.loan_id = p.loan_id
          AND loan_installment.schedule_version = p.version AND loan_installment.n = p.n
          AND (p.penalty_e6 <> loan_installment.penalty_e6
               OR p.compound_e6 <> loan_installment.compound_e6)
    """, tenant_id)
    start_days = d.days(d.p("date"), "l.accrual_start") + " + 1"
    length = d.days("l.accrual_due", "l.accrual_start")
    elapsed = d.least(d.greatest(start_days, "0"), length)

    def target(component: str) -> str:
        return (f"l.accrual_base_{component} + CASE WHEN l.accrual_due IS NULL THEN 0 ELSE "
                f"(2 * l.accrual_{component} * {elapsed} + {length}) / (2 * {length}) END")

    await fetch(engine, f"""
        INSERT INTO cob_loan (loan_id, d_interest, d_fees, penalty, dpd, bucket, floor,
                              old_bucket, old_floor, override, number)
        SELECT w.id, w.d_interest, w.d_fees, w.penalty, w.dpd, {_bucket_case(policy.bucket_edges)},
               {_classify(policy, d)}, w.bucket, w.classification, w.classification_override,
               w.number
        FROM (
          SELECT l.id, l.product_id, l.bucket, l.classification, l.classification_override,
                 l.number,
                 {d.greatest(target('interest') + ' - l.interest_accrued', '0')} AS d_interest,
                 {d.greatest(target('fees') + ' - l.fees_accrued', '0')} AS d_fees,
                 COALESCE(p.amount, 0) AS penalty,
                 COALESCE({d.days(d.p('date'), 'p.oldest')} + 1, 0) AS dpd
          FROM loan l
          LEFT JOIN (SELECT loan_id, SUM(penalty + compound) AS amount,
                            MIN(due_on) AS oldest
                     FROM cob_pen GROUP BY loan_id) p ON p.loan_id = l.id
          WHERE {_chunk(d)}
        ) w
    """, day, day, day, *chunk)


async def post_lines(engine: Any, d: Dialect, tenant_id: Any, entry_id: Any) -> None:
    """One debit line per loan and receivable (the income side is the caller's, in total)."""
    for account, column in (("1132", "d_interest"), ("1221", "d_fees"), ("1133", "penalty")):
        await fetch(engine, f"""
            INSERT INTO posting (id, tenant_id, entry_id, account_code, loan_id, debit, credit)
            SELECT {d.new_id}, {d.p('uuid')}, {d.p('uuid')}, '{account}', loan_id, {column}, 0
            FROM cob_loan WHERE {column} > 0
        """, tenant_id, entry_id)


async def totals(engine: Any) -> dict[str, int]:
    rows = await fetch(engine, "SELECT COUNT(*) AS loans, COALESCE(SUM(d_interest), 0) AS "
                               "interest, COALESCE(SUM(d_fees), 0) AS fees, "
                               "COALESCE(SUM(penalty), 0) AS penalty FROM cob_loan")
    return {k: int(v or 0) for k, v in rows[0].items()}


async def update_loans(engine: Any, d: Dialect, tenant_id: Any, lo: Any, hi: Any, day: date
                       ) -> None:
    """Apply the day to the loan rows, then roll those whose period completed."""
    await fetch(engine, f"""
        UPDATE loan SET interest_accrued = loan.interest_accrued + w.d_interest,
                        interest_receivable = loan.interest_receivable + w.d_interest,
                        fees_accrued = loan.fees_accrued + w.d_fees,
                        fees_receivable = loan.fees_receivable + w.d_fees,
                        days_past_due = w.dpd, bucket = w.bucket, classification = w.floor,
                        last_closed_on = {d.p('date')}
        FROM cob_loan w WHERE loan.id = w.loan_id AND loan.tenant_id = {d.p('uuid')}
          AND loan.id BETWEEN {d.p('uuid')} AND {d.p('uuid')}
    """, day, tenant_id, lo, hi)
    await fetch(engine, f"""
        UPDATE loan SET accrual_base_interest = loan.accrual_base_interest + loan.accrual_interest,
                        accrual_base_fees = loan.accrual_base_fees + loan.accrual_fees,
                        accrual_n = loan.accrual_n + 1,
                        accrual_start = loan.accrual_due,
                        accrual_due = nx.due_on,
                        accrual_interest = COALESCE(nx.interest, 0),
                        accrual_fees = COALESCE(nx.fees, 0)
        FROM (SELECT l.id, i.due_on, i.interest, i.fees
              FROM cob_loan w JOIN loan l ON l.id = w.loan_id AND l.tenant_id = {d.p('uuid')}
              LEFT JOIN loan_installment i
                ON i.tenant_id = l.tenant_id AND i.loan_id = l.id
               AND i.schedule_version = l.schedule_version AND i.n = l.accrual_n + 1
              WHERE l.accrual_due IS NOT NULL AND l.accrual_due <= {d.p('date')}
                AND l.id BETWEEN {d.p('uuid')} AND {d.p('uuid')}) nx
        WHERE loan.id = nx.id AND loan.tenant_id = {d.p('uuid')}
          AND loan.id BETWEEN {d.p('uuid')} AND {d.p('uuid')}
    """, tenant_id, day + timedelta(days=1), lo, hi, tenant_id, lo, hi)


def _json(d: Dialect, pairs: list[tuple[str, str]]) -> str:
    fn = "json_build_object" if d.pg else "json_object"
    return f"{fn}(" + ", ".join(f"'{k}', {v}" for k, v in pairs) + ")"


def _rank(column: str) -> str:
    return ("CASE " + column + " " + " ".join(
        f"WHEN '{name}' THEN {i}" for i, name in enumerate(CLASS_ORDER)) + " ELSE -1 END")


async def record_changes(engine: Any, d: Dialect, tenant_id: Any, day: date, by: str | None,
                         now: Any) -> int:
    """Classification history rows and `loan.overdue_stage` / `loan.classified` events for
    the chunk's loans whose bucket or floor moved, set-based; returns the events written."""
    counts = (await fetch(engine, "SELECT COALESCE(SUM(CASE WHEN bucket <> old_bucket THEN 1 "
                                  "ELSE 0 END), 0) AS stages, COALESCE(SUM(CASE WHEN floor <> "
                                  "old_floor THEN 1 ELSE 0 END), 0) AS floors FROM cob_loan"))[0]
    if not counts["stages"] and not counts["floors"]:
        return 0
    text = "::text" if d.pg else ""
    common = [("loan_id", f"w.loan_id{text}"), ("number", "w.number"),
              ("days_past_due", "w.dpd"), ("business_date", f"{d.p('date')}{text}")]
    carried = (f"CASE WHEN w.override IS NOT NULL AND {_rank('w.override')} > "
                 f"{_rank('w.floor')} THEN w.override ELSE w.floor END")
    for name, payload, changed in (
            ("loan.overdue_stage", [*common, ("bucket", "w.bucket"),
                                    ("previous", "w.old_bucket")], "w.bucket <> w.old_bucket"),
            ("loan.classified", [*common, ("classification", carried), ("floor", "w.floor"),
                                 ("previous", "w.old_floor")], "w.floor <> w.old_floor")):
        await fetch(engine, f"""
            INSERT INTO outbox_message (id, tenant_id, kind, name, payload, created_at,
              created_by, available_at, attempts, max_attempts, progress_done)
            SELECT {d.new_id}, {d.p('uuid')}, 'event', '{name}', {_json(d, payload)},
                   {d.p('timestamptz')}, {d.p('text')}, {d.p('timestamptz')}, 0, 8, 0
            FROM cob_loan w WHERE {changed}
        """, tenant_id, day, now, by, now)
    await fetch(engine, f"""
        INSERT INTO loan_classification (id, tenant_id, loan_id, changed_on, old, new, source,
          days_past_due, created_at, created_by)
        SELECT {d.new_id}, {d.p('uuid')}, w.loan_id, {d.p('date')}, w.old_floor, w.floor, 'cob',
               w.dpd, {d.p('timestamptz')}, {d.p('text')}
        FROM cob_loan w WHERE w.floor <> w.old_floor
    """, tenant_id, day, now, by)
    return int(counts["stages"]) + int(counts["floors"])


def _yuan_text(d: Dialect, fen: str) -> str:
    """A non-negative amount in 分 as a yuan decimal string, by integer arithmetic."""
    if d.pg:
        return f"(({fen}) / 100)::text || '.' || lpad((({fen}) % 100)::text, 2, '0')"
    return f"(({fen}) / 100) || '.' || substr('0' || (({fen}) % 100), -2, 2)"


async def due_soon_events(engine: Any, d: Dialect, tenant_id: Any, today: date,
                          days: list[int], by: str | None, now: Any) -> int:
    """One `installment.due_soon` event per unpaid installment of an active loan due `n`
    days after `today` (n in `days`), written by SQL; returns how many."""
    wanted = sorted({today + timedelta(days=n) for n in days if n >= 0})
    if not wanted:
        return 0
    text = "::text" if d.pg else ""
    owed = ("i.principal + i.interest + i.fees + i.penalty + i.compound - i.principal_paid "
            "- i.interest_paid - i.fees_paid - i.penalty_paid - i.compound_paid")
    payload = _json(d, [("loan_id", f"l.id{text}"), ("number", "l.number"),
                        ("customer_id", f"l.customer_id{text}"), ("n", "i.n"),
                        ("due_on", f"i.due_on{text}"),
                        ("days", d.days("i.due_on", d.p("date"))),
                        ("amount", _yuan_text(d, owed))])
    marks = ", ".join([d.p("date")] * len(wanted))
    insert = f"""
        INSERT INTO outbox_message (id, tenant_id, kind, name, payload, created_at,
          created_by, available_at, attempts, max_attempts, progress_done)
        SELECT {d.new_id}, l.tenant_id, 'event', 'installment.due_soon', {payload},
               {d.p('timestamptz')}, {d.p('text')}, {d.p('timestamptz')}, 0, 8, 0
        FROM loan l JOIN loan_installment i ON i.tenant_id = l.tenant_id AND i.loan_id = l.id
         AND i.schedule_version = l.schedule_version
        WHERE l.tenant_id = {d.p('uuid')} AND l.status = 'active' AND i.settled_on IS NULL
          AND i.due_on IN ({marks})"""
    args = [today, now, by, now, tenant_id, *wanted]
    if d.pg:
        rows = await fetch(engine, f"WITH ins AS ({insert} RETURNING 1) "
                                   "SELECT COUNT(*) AS n FROM ins", *args)
    else:
        await fetch(engine, insert, *args)
        rows = await fetch(engine, "SELECT changes() AS n")
    return int(rows[0]["n"])
