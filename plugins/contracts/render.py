"""A contract as a PDF: the filled-in template, a signature block, the schedule attached.

The template's output is plain text with a little markup, so business staff need no HTML:

    # 标题          the contract's title (centred; the first one is the PDF's title)
    ## 第一条 ...   a section heading
    (blank line)    a gap
    anything else   a paragraph of its own (one line, one paragraph)

Text is escaped before reportlab sees it, so a borrower called `<b>` prints as written.
The font is reportlab's built-in CID font STSong-Light, as in the loan statement: the
viewer supplies the glyphs and no font file is committed. Money arrives as Decimal and is
printed from Decimal strings.

The signature block has one empty PDF signature field per party (`SIGNATURE_FIELDS`),
placed where the block was laid out, so `signing.sign_pdf` (or any PDF reader with a
certificate) signs into the visible box. The fields are added with pyHanko after reportlab
builds the document, because reportlab has no signature field.
"""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from plugins.contracts.templates import (
    ContractData,
    contract_variables,
    money,
    render_text,
    typed_schedule,
)

FONT = "STSong-Light"
BORROWER_FIELD = "borrower"
LENDER_FIELD = "lender"
SIGNATURE_FIELDS = (BORROWER_FIELD, LENDER_FIELD)  # the order they sign in
SCHEDULE_HEADER = ("期次", "应还日期", "本金", "利息", "费用", "合计", "剩余本金")
# field name -> (page index, (x1, y1, x2, y2) in points), recorded as the boxes are drawn
Boxes = dict[str, tuple[int, tuple[float, float, float, float]]]


def _register_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def _styles() -> dict[str, Any]:
    from reportlab.lib.styles import ParagraphStyle

    common = {"fontName": FONT, "wordWrap": "CJK"}
    return {
        "title": ParagraphStyle("title", fontSize=18, leading=26, alignment=1,
                                spaceAfter=10, **common),
        "heading": ParagraphStyle("heading", fontSize=12, leading=18, spaceBefore=8,
                                  spaceAfter=3, **common),
        "body": ParagraphStyle("body", fontSize=10.5, leading=17, **common),
        "small": ParagraphStyle("small", fontSize=9, leading=13, **common),
    }


def parse_markup(text: str) -> list[tuple[str, str]]:
    """(kind, text) per line: `title`, `heading`, `gap` or `body`; runs of gaps are one."""
    out: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("# "):
            out.append(("title", line[2:].strip()))
        elif line.startswith("## "):
            out.append(("heading", line[3:].strip()))
        elif not line.strip():
            if out and out[-1][0] != "gap":
                out.append(("gap", ""))
        else:
            out.append(("body", line.strip()))
    while out and out[-1][0] == "gap":
        out.pop()
    return out


def _body(text: str, styles: dict[str, Any]) -> list[Any]:
    from reportlab.platypus import Paragraph, Spacer

    story: list[Any] = []
    for kind, line in parse_markup(text):
        if kind == "gap":
            story.append(Spacer(1, 5))
        else:
            story.append(Paragraph(escape(line), styles[kind]))
    return story


def _signature_box(name: str, boxes: Boxes, width: float, height: float) -> Any:
    """A dashed box that records where it lands, for the signature field laid over it."""
    from reportlab.lib import colors
    from reportlab.platypus import Flowable

    class SignatureBox(Flowable):  # type: ignore[misc]
        def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
            return width, height

        def draw(self) -> None:
            c = self.canv
            c.saveState()
            c.setDash(3, 2)
            c.setStrokeColor(colors.HexColor("#9aa5b4"))
            c.rect(0, 0, width, height)
            c.restoreState()
            x1, y1 = c.absolutePosition(0, 0)
            x2, y2 = c.absolutePosition(width, height)
            boxes[name] = (c.getPageNumber() - 1, (x1, y1, x2, y2))

    return SignatureBox()


def _signature_block(v: dict[str, Any], styles: dict[str, Any], boxes: Boxes) -> Any:
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Paragraph, Spacer, Table, TableStyle

    def p(text: str) -> Any:
        return Paragraph(escape(text), styles["body"])

    small = styles["small"]
    table = Table([
        [p("贷款人（甲方，电子签章）："), p("借款人（乙方，电子签名）：")],
        [p(v["lender_name"]), p(v["borrower_name"])],
        [_signature_box(LENDER_FIELD, boxes, 70 * mm, 24 * mm),
         _signature_box(BORROWER_FIELD, boxes, 70 * mm, 24 * mm)],
        [Paragraph("签署时间：以电子签名记载的时间为准", small),
         Paragraph("签署时间：以电子签名记载的时间为准", small)],
    ], colWidths=[85 * mm, 85 * mm])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("LEFTPADDING", (0, 0), (-1, -1), 0),
                               ("TOPPADDING", (0, 0), (-1, -1), 3)]))
    return KeepTogether([Spacer(1, 14), table])


def _schedule_pages(data: ContractData, v: dict[str, Any], styles: dict[str, Any]
                    ) -> list[Any]:
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import PageBreak, Paragraph, Table, TableStyle

    rows = typed_schedule(data)
    total = {k: sum((r[k] for r in rows), Decimal(0))
             for k in ("principal", "interest", "fees", "total")}
    body = [[str(r["n"]), r["due_on"].isoformat(), money(r["principal"]),
             money(r["interest"]), money(r["fees"]), money(r["total"]), money(r["balance"])]
            for r in rows]
    foot = ["合计", "", money(total["principal"]), money(total["interest"]),
            money(total["fees"]), money(total["total"]), ""]
    table = Table([list(SCHEDULE_HEADER), *body, foot], repeatRows=1,
                  colWidths=[x * mm for x in (12, 24, 27, 25, 22, 30, 30)])
    grid = colors.HexColor("#c8ced8")
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), FONT, 8.5), ("GRID", (0, 0), (-1, -1), .4, grid),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef2f7")),
        ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#f6f8fb")),
        ("ALIGN", (0, 0), (-1, 0), "CENTER"), ("ALIGN", (0, 1), (0, -1), "CENTER"),
        ("ALIGN", (2, 1), (-1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]))
    facts = (f"合同编号：{v['contract_number']}　借款人：{v['borrower_name']}　"
             f"借款金额：人民币 {v['amount']} 元（{v['amount_in_words']}）　单位：元")
    return [PageBreak(), Paragraph("附件：还款计划表", styles["heading"]),
            Paragraph(escape(facts), styles["small"]), table]


def _add_signature_fields(pdf: bytes, boxes: Boxes) -> bytes:
    """The same document with an empty signature field over each recorded box."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.writer import copy_into_new_writer
    from pyhanko.sign.fields import SigFieldSpec, append_signature_field

    writer = copy_into_new_writer(PdfFileReader(BytesIO(pdf)))
    for name in SIGNATURE_FIELDS:
        page, box = boxes[name]
        append_signature_field(writer, SigFieldSpec(sig_field_name=name, on_page=page,
                                                    box=tuple(round(x, 2) for x in box)))
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def render_pdf(template_text: str, data: ContractData) -> bytes:
    """The contract for `data` from a template that passed `check_template`, as an A4 PDF
    with empty signature fields `borrower` and `lender` and the schedule attached."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    _register_font()
    styles = _styles()
    v = contract_variables(data)
    text = render_text(template_text, v)
    titles = [line for kind, line in parse_markup(text) if kind == "title"]
    boxes: Boxes = {}
    story = [*_body(text, styles), _signature_block(v, styles, boxes),
             *_schedule_pages(data, v, styles)]

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(20 * mm, 10 * mm, f"合同编号：{v['contract_number']}")
        canvas.drawRightString(A4[0] - 20 * mm, 10 * mm, f"第 {doc.page} 页")
        canvas.restoreState()

    buf = BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm,
                            topMargin=18 * mm, bottomMargin=18 * mm,
                            title=titles[0] if titles else "借款合同",
                            author=data.lender_name, subject=data.contract_number,
                            creator="xindai")
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return _add_signature_fields(buf.getvalue(), boxes)
