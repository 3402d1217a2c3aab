"""Deterministic synthetic credit reports: the same resident ID always gets the same
figures (derived from a SHA-256 of the ID number), so demos and tests are repeatable and
no real person's data is ever involved."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

FONT = "STSong-Light"


def valid_resident_id(value: str) -> bool:
    """GB 11643: format, birth date and check character (the kernel's own check)."""
    from core.validators import InvalidValue, check_resident_id

    try:
        check_resident_id(value)
    except InvalidValue:
        return False
    return True


def summary_for(id_number: str) -> dict[str, Any]:
    """The report's summary figures, a pure function of the ID number."""
    h = hashlib.sha256(id_number.upper().encode()).digest()
    risk = h[0] / 255  # 0 clean ... 1 troubled
    overdue = 0 if risk < 0.7 else 1 + h[1] % 3
    worst = 0 if risk < 0.55 else (15, 30, 45, 90, 120)[h[2] % 5]
    debt = Decimal(((h[3] << 8) | h[4]) % 400) * 1000
    queries = h[5] % 4 + (3 if risk > 0.6 else 0)
    score = int(880 - risk * 380 - h[7] % 40)
    return {"bureau_score": score, "overdue_accounts": overdue,
            "max_days_overdue_24m": worst, "total_debt": f"{debt:.2f}",
            "queries_3m": queries, "open_accounts": h[6] % 6, "has_record": True}


def report_number(id_number: str, when: datetime) -> str:
    h = hashlib.sha256(f"{id_number}|{when.isoformat()}".encode()).hexdigest()[:10].upper()
    return f"BR{when:%Y%m%d}{h}"


def masked_id(id_number: str) -> str:
    return id_number[:6] + "*" * 8 + id_number[-4:]


def render_pdf(name: str, id_number: str, consent_ref: str, report_no: str,
               summary: dict[str, Any], when: datetime) -> bytes:
    """A one-page PDF report (ReportLab, a built-in CJK font)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, invariant=True)
    pdf.setTitle(f"个人信用报告 {report_no}")
    width, height = A4
    pdf.setFont(FONT, 18)
    pdf.drawCentredString(width / 2, height - 72, "个人信用报告（模拟）")
    pdf.setFont(FONT, 10)
    pdf.drawCentredString(width / 2, height - 92,
                          "本报告由本地模拟征信服务生成，数据为合成数据，仅供演示与测试")
    rows = [
        ("报告编号", report_no),
        ("报告时间", when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("被查询人", name),
        ("证件号码", masked_id(id_number)),
        ("授权书编号", consent_ref),
        ("信用评分", str(summary["bureau_score"])),
        ("当前逾期账户数", str(summary["overdue_accounts"])),
        ("近24个月最长逾期天数", str(summary["max_days_overdue_24m"])),
        ("负债总额（元）", summary["total_debt"]),
        ("近3个月查询次数", str(summary["queries_3m"])),
        ("未结清账户数", str(summary["open_accounts"])),
    ]
    y = height - 140
    pdf.setFont(FONT, 11)
    for label, value in rows:
        pdf.drawString(80, y, label)
        pdf.drawString(260, y, value)
        pdf.line(80, y - 6, width - 80, y - 6)
        y -= 26
    pdf.showPage()
    pdf.save()
    return buf.getvalue()
