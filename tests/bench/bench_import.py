"""Benchmark of a spreadsheet import: prints figures; `--save` also writes bench/results/.

    .venv/bin/python tests/bench/bench_import.py [--rows 100000] [--entity customer]
        [--postgres URL] [--save] [--profile]

Builds an xlsx of `--rows` valid rows (write-only openpyxl, not timed), uploads it (timed:
stored encrypted), runs the dry run and then the commit (each timed: every row read,
validated by the registry, checked for duplicates in the file and against the blind index,
secrets encrypted, blind indexes, one audit entry and one event per record, all rows in one
transaction). Peak RSS is the process's (resource.getrusage), read after each phase. The
target (issue 7): 100,000 rows under 60 s and 500 MB.
Outside the pass/fail suite on purpose: timings are figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
import uuid
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import on_engines, report  # noqa: E402


def resident_id(i: int) -> str:
    from core.validators import resident_id_check_char

    month, day, year = (i // 1000) % 12 + 1, (i // 12_000) % 28 + 1, 1950 + i // 336_000
    body = f"140105{year}{month:02d}{day:02d}{i % 1000:03d}"  # unique below 16 million
    return body + resident_id_check_char(body)


def sample_value(f: Any, i: int) -> Any:
    """A valid cell for field `f` of row i (identifiers unique per row)."""
    from core.fields import FieldType

    t = f.type
    if t == FieldType.resident_id:
        return resident_id(i)
    if t == FieldType.phone:
        return f"13{i % 10}{i:08d}"[:11]
    if t == FieldType.credit_code:
        return None
    if t in (FieldType.single_select,):
        return f.options[0].zh if f.options else None
    if t == FieldType.region:
        return "140105"
    if t in (FieldType.money, FieldType.decimal):
        return 50000 + i % 1000
    if t == FieldType.integer:
        return i % 100
    if t == FieldType.email:
        return f"user{i}@example.com"
    if t == FieldType.boolean:
        return "是"
    if t in (FieldType.text, FieldType.long_text):
        return f"{f.label_zh}{i}"
    return None


def build_xlsx(entity: Any, fields: list[Any], rows: int) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("data")
    sheet.append([f.label_zh for f in fields])
    for i in range(rows):
        sheet.append([sample_value(f, i) for f in fields])
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def measure(settings_env: dict[str, str], rows: int, entity_name: str,
                  profile: bool) -> dict[str, Any]:
    from core import imports, records
    from core import kernel as K
    from core.fields import FieldType
    from core.packs import apply_pack, load_pack
    from core.settings import load_settings
    from core.tenancy import Context

    k = K.boot(load_settings(settings_env))
    await K.migrate(k)
    await K.start(k)
    try:
        pack = load_pack(ROOT / "tests" / "fixtures" / "packs" / "small")
        pack.record_files.clear()
        info, _ = await apply_pack(pack, slug=f"b-{uuid.uuid4().hex[:8]}")
        ctx = Context.system(info)
        entity = await records.entity_for(ctx, entity_name)
        fields = [f for f in imports.importable_fields(ctx, entity)
                  if f.type not in (FieldType.reference, FieldType.credit_code)]
        if entity.field("kind") is not None:  # customers: individuals (a resident ID each)
            fields = [f for f in fields if f.key not in ("legal_representative",)]
        data = build_xlsx(entity, fields, rows)
        figures: dict[str, Any] = {"rows": rows, "xlsx_mb": round(len(data) / 2**20, 1),
                                   "rss_before_mb": rss_mb()}
        t0 = time.perf_counter()
        job = await imports.upload(ctx, entity_name, "bench.xlsx", data)
        figures["upload_s"] = round(time.perf_counter() - t0, 2)
        del data
        assert not job["mapping_errors"], job["mapping_errors"]
        t0 = time.perf_counter()
        dry = await imports.run(ctx, job["id"], commit=False)
        figures["dry_run_s"] = round(time.perf_counter() - t0, 2)
        figures["rss_after_dry_run_mb"] = rss_mb()
        assert dry.error_count == 0, dry.errors[:5]
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        t0 = time.perf_counter()
        out = await imports.run(ctx, job["id"], commit=True)
        elapsed = time.perf_counter() - t0
        if profiler is not None:
            import pstats

            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
        assert out.error_count == 0 and out.created == rows, out.errors[:5]
        figures["commit_s"] = round(elapsed, 2)
        figures["commit_rows_per_s"] = round(rows / elapsed)
        figures["peak_rss_mb"] = rss_mb()
        figures["stored"] = (await records.list_records(ctx, entity_name, per_page=1)).total
        return figures
    finally:
        await K.stop(k)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--entity", default="customer")
    parser.add_argument("--postgres", default="")
    parser.add_argument("--sqlite", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()
    results = await on_engines(
        lambda env: measure(env, args.rows, args.entity, args.profile), args.postgres,
        sqlite=args.sqlite)
    report("import", results, args.save, rows=args.rows, entity=args.entity)


if __name__ == "__main__":
    asyncio.run(main())
