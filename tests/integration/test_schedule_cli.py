"""`xindai schedule` as integrators run it: a real process, JSON on stdin and stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

XINDAI = [str(Path(sys.executable).parent / "xindai")]


def schedule(stdin: str | bytes, tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINDAI_")}
    env.update({"XINDAI_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)})
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    return subprocess.run([*XINDAI, "schedule"], input=data, cwd=tmp_path, env=env,
                          capture_output=True, timeout=120)


def test_good_request(tmp_path: Path) -> None:
    request = {"principal": "10000", "annual_rate": "12", "method": "equal_installment",
               "periods": 12, "disbursed_on": "2023-01-31",
               "fees": [{"name": "服务费", "amount": "100", "when": "disbursement"}]}
    result = schedule(json.dumps(request, ensure_ascii=False), tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    body: dict[str, Any] = json.loads(result.stdout)
    rows = body["installments"]
    assert [r["total"] for r in rows[:-1]] == ["888.49"] * 11 and rows[-1]["total"] == "888.47"
    assert [r["due_on"] for r in rows[:3]] == ["2023-02-28", "2023-03-31", "2023-04-30"]
    assert rows[0] == {"n": 1, "due_on": "2023-02-28", "principal": "788.49",
                       "interest": "100.00", "fees": "0.00", "total": "888.49",
                       "balance": "9211.51"}
    assert body["total_principal"] == "10000.00"
    assert body["total_interest"] == str(sum(Decimal(r["interest"]) for r in rows))
    assert body["disbursement_fees"] == "100.00"
    assert Decimal(body["apr"]) > 12
    text = result.stdout.decode()
    assert text.index('"apr"') < text.index('"disbursement_fees"') < text.index('"installments"')


def test_quote_apr_includes_the_fee(tmp_path: Path) -> None:
    request = {"principal": "100000", "annual_rate": "12", "periods": 12,
               "disbursed_on": "2023-01-15",
               "fees": [{"name": "手续费", "percent": "1", "when": "disbursement"}]}
    body = json.loads(schedule(json.dumps(request), tmp_path).stdout)
    flows = [Fraction(r["total"]) for r in body["installments"]]
    assert flows[0] == Fraction("8884.88")

    def npv(apr_percent: Fraction) -> Fraction:  # lender's view: 99,000 out, installments in
        rate = apr_percent / 100 / 12
        return sum((f / (1 + rate) ** (k + 1) for k, f in enumerate(flows)), Fraction(-99000))

    apr = Fraction(body["apr"])
    assert npv(apr - Fraction(1, 200)) > 0 > npv(apr + Fraction(1, 200))
    assert apr > 12


@pytest.mark.parametrize("stdin,needle", [
    ('{"principal": "-5000"}', "principal"),
    ('{"principal": "5000.001"}', "principal"),
    ('{"method": "balloon"}', "method"),
    ('{"periods": 0}', "periods"),
    ('{"periods": 5000}', "periods"),
    ('{"annual_rate": "1001"}', "annual_rate"),
    ('{"disbursed_on": "2023-02-30"}', "disbursed_on"),
    ('{"colour": "red"}', "colour"),
    ("not json", "JSON"),
    ("", "JSON"),
])
def test_bad_request_exits_2_with_one_line(tmp_path: Path, stdin: str, needle: str) -> None:
    result = schedule(stdin, tmp_path)
    assert result.returncode == 2
    assert result.stdout == b""
    lines = result.stderr.decode("utf-8").strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("错误 / error: ")
    assert needle in lines[0]
    zh, _, en = lines[0].removeprefix("错误 / error: ").partition(" / ")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh) and en


def test_not_utf8(tmp_path: Path) -> None:
    result = schedule('{"principal": "五千"}'.encode("gbk"), tmp_path)
    assert result.returncode == 2 and b"UTF-8" in result.stderr


def test_help_lists_the_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINDAI_")}
    env.update({"XINDAI_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)})
    out = subprocess.run([*XINDAI, "--help"], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert "schedule" in out.stdout
