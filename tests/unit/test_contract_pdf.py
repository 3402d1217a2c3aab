"""Contract PDFs: rendered text found again with pypdf, the signature fields and the schedule
attachment; the local PAdES signer: one and two signatures verify, a byte changed after
signing or a change appended after it is caught, an untrusted CA is reported untrusted.

Certificates are generated here (one tenant CA for the module, one other CA): nothing is
committed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import BytesIO

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pypdf import PdfReader

from plugins.contracts.render import (
    BORROWER_FIELD,
    LENDER_FIELD,
    SCHEDULE_HEADER,
    parse_markup,
    render_pdf,
)
from plugins.contracts.signing import (
    SigningError,
    TenantCertificates,
    async_sign_pdf,
    async_verify_pdf,
    issue_signer_certificate,
    new_tenant_ca,
    sign_pdf,
    verify_pdf,
)
from plugins.contracts.templates import TemplateRefused, sample_data, sample_template

TENANT = "示例小额贷款有限公司"


@pytest.fixture(scope="module", autouse=True)
def quiet_pyhanko() -> Iterator[None]:
    """pyHanko logs a traceback for every untrusted path; the tests expect those."""
    logger = logging.getLogger("pyhanko")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


@pytest.fixture(scope="module")
def ca() -> TenantCertificates:
    return new_tenant_ca(TENANT)


@pytest.fixture(scope="module")
def other_ca() -> TenantCertificates:
    return new_tenant_ca("另一家贷款公司", key_type="ec")


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return render_pdf(sample_template(), sample_data())


def sign(pdf_bytes: bytes, certs: TenantCertificates, field: str = BORROWER_FIELD) -> bytes:
    return sign_pdf(pdf_bytes, certs.signer_key_pem, certs.signer_cert_pem, certs.ca_cert_pem,
                    field, reason="签署借款合同", location="北京")


@pytest.fixture(scope="module")
def signed_once(pdf: bytes, ca: TenantCertificates) -> bytes:
    return sign(pdf, ca, BORROWER_FIELD)


@pytest.fixture(scope="module")
def signed_twice(signed_once: bytes, ca: TenantCertificates) -> bytes:
    return sign(signed_once, ca, LENDER_FIELD)


def text_of(pdf_bytes: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(pdf_bytes)).pages)


def flip_content_byte(pdf_bytes: bytes) -> bytes:
    """One bit of the first page content stream's data changed, in place."""
    at = pdf_bytes.index(b"stream", pdf_bytes.index(b"/Contents")) + 40
    return pdf_bytes[:at] + bytes([pdf_bytes[at] ^ 0x01]) + pdf_bytes[at + 1:]


# --- rendering ------------------------------------------------------------------------------

def test_rendered_text_has_the_masked_id_capitals_and_schedule(pdf: bytes) -> None:
    text = text_of(pdf)
    assert "110***********002X" in text and "11010519491231002X" not in text
    assert "人民币（大写）壹拾万元整" in text
    assert "个人借款合同" in text and "第八条 合同生效" in text
    assert "附件：还款计划表" in text
    for cell in ("2025-02-15", "33,165.19", "600.00", "33,765.19", "66,834.81"):
        assert cell in text
    assert "101,201.83" in text  # the total row
    assert all(h in text for h in SCHEDULE_HEADER)


def test_pdf_metadata_and_pages(pdf: bytes) -> None:
    reader = PdfReader(BytesIO(pdf))
    assert reader.metadata.title == "个人借款合同"
    assert reader.metadata.subject == "HT-2025-000001"
    assert len(reader.pages) == 3  # body, signature block, schedule
    assert "第 3 页" in reader.pages[2].extract_text()


def test_empty_signature_fields_over_the_signature_block(pdf: bytes) -> None:
    reader = PdfReader(BytesIO(pdf))
    fields = reader.get_fields()
    assert set(fields) == {BORROWER_FIELD, LENDER_FIELD}
    assert all(f.get("/FT") == "/Sig" and "/V" not in f for f in fields.values())
    rects = {}
    for n, page in enumerate(reader.pages):
        for annot in page.get("/Annots") or []:
            a = annot.get_object()
            rects[a["/T"]] = (n, [float(x) for x in a["/Rect"]])
    (p1, lender), (p2, borrower) = rects[LENDER_FIELD], rects[BORROWER_FIELD]
    assert p1 == p2 == 1  # on the page with the signature block, before the schedule
    width, height = (float(x) for x in reader.pages[1].mediabox.upper_right)
    for x1, y1, x2, y2 in (lender, borrower):
        assert 0 < x1 < x2 < width and 0 < y1 < y2 < height
        assert 190 < x2 - x1 < 210 and 60 < y2 - y1 < 75  # 70 mm x 24 mm
    assert lender[2] < borrower[0]  # side by side: lender left, borrower right


def test_markup() -> None:
    assert parse_markup("# 标题\n\n\n## 第一条\n正文一\n  正文二  \n\n") == [
        ("title", "标题"), ("gap", ""), ("heading", "第一条"), ("body", "正文一"),
        ("body", "正文二")]
    assert parse_markup("#不是标题\n##也不是") == [("body", "#不是标题"), ("body", "##也不是")]


def test_text_is_escaped_not_markup() -> None:
    data = replace(sample_data(), borrower_name="李<b>四</b>&")
    text = text_of(render_pdf("# 合同\n借款人：{{ borrower_name }}", data))
    assert "借款人：李<b>四</b>&" in text


def test_long_schedule_spans_pages_with_the_header_repeated() -> None:
    from plugins.servicing.schedule import Terms, build_schedule

    s = build_schedule(Terms(principal=Decimal("1000000"), annual_rate=Decimal("4.9"),
                             method="equal_installment", periods=360,
                             disbursed_on=date(2025, 1, 15)))
    data = replace(sample_data(), amount=Decimal("1000000"), periods=360, term="30年",
                   schedule=s.rows)
    pdf = render_pdf(sample_template(), data)
    reader = PdfReader(BytesIO(pdf))
    schedule_pages = [p.extract_text() for p in reader.pages if "剩余本金" in p.extract_text()]
    assert len(schedule_pages) >= 8
    last = s.installments[-1]
    assert last.due_on.isoformat() in schedule_pages[-1]
    assert "壹佰万元整" in text_of(pdf)


def test_render_refuses_what_the_check_refuses() -> None:
    with pytest.raises(TemplateRefused) as caught:
        render_pdf("# 合同\n{{ guarantor }}", sample_data())
    assert "guarantor" in caught.value.errors[0].message("en")


# --- certificates ---------------------------------------------------------------------------

def test_tenant_ca_and_signing_certificate(ca: TenantCertificates) -> None:
    root = x509.load_pem_x509_certificate(ca.ca_cert_pem)
    leaf = x509.load_pem_x509_certificate(ca.signer_cert_pem)
    cn = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == f"{TENANT} 电子合同签章"
    assert leaf.issuer == root.subject == root.issuer
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    leaf.verify_directly_issued_by(root)
    assert isinstance(leaf.public_key(), rsa.RSAPublicKey)
    assert leaf.public_key().key_size == 2048
    assert leaf.not_valid_after_utc <= root.not_valid_after_utc
    now = datetime.now(UTC)
    assert leaf.not_valid_before_utc < now < leaf.not_valid_after_utc
    for key in (ca.ca_key_pem, ca.signer_key_pem):
        assert key.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, for the caller
    assert "PRIVATE" not in repr(ca) and "BEGIN" not in repr(ca).split("ca_cert_pem")[0]


def test_ec_keys_long_names_and_bad_arguments(other_ca: TenantCertificates) -> None:
    leaf = x509.load_pem_x509_certificate(other_ca.signer_cert_pem)
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    long_name = "很长的贷款公司名称" * 10
    certs = new_tenant_ca(long_name, key_type="ec", ca_years=2, signer_years=1)
    leaf = x509.load_pem_x509_certificate(certs.signer_cert_pem)
    cn = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert len(cn.encode()) <= 64 and cn.startswith("很长的") and cn.endswith(" 电子合同签章")
    org = leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert len(org.encode()) <= 64 and long_name.startswith(org)
    with pytest.raises(ValueError):
        issue_signer_certificate(certs.ca_key_pem, certs.ca_cert_pem, "张" * 22)
    for kwargs in ({"tenant_name": " "}, {"tenant_name": "x", "signer_years": 30},
                   {"tenant_name": "x", "key_type": "dsa"}):
        with pytest.raises(ValueError):
            new_tenant_ca(**kwargs)  # type: ignore[arg-type]


# --- signing and verifying ------------------------------------------------------------------

def test_one_signature_verifies(signed_once: bytes, ca: TenantCertificates) -> None:
    result = verify_pdf(signed_once, ca.ca_cert_pem)
    assert result.ok and result.intact and result.valid and result.trusted
    assert result.covers_whole_document and result.error is None
    assert result.signer_cn == f"{TENANT} 电子合同签章"
    assert abs(result.signing_time - datetime.now(UTC)) < timedelta(minutes=5)
    [sig] = result.signatures
    assert sig.field_name == BORROWER_FIELD and sig.pades and sig.md_algorithm == "sha256"
    assert sig.modification_level == "NONE" and sig.coverage == "ENTIRE_FILE"
    as_dict = result.as_dict()
    assert as_dict["signatures"][0]["signing_time"] == result.signing_time.isoformat()


def test_signed_pdf_is_pades_with_the_chain_embedded(signed_once: bytes) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    [sig] = PdfFileReader(BytesIO(signed_once)).embedded_signatures
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert len(sig.signed_data["certificates"]) == 2  # signer and CA
    assert sig.sig_object["/Reason"] == "签署借款合同"
    assert sig.sig_object["/Location"] == "北京"


def test_signing_appends_and_keeps_the_text(pdf: bytes, signed_once: bytes) -> None:
    assert signed_once[:len(pdf)] == pdf  # an incremental update
    assert "壹拾万元整" in text_of(signed_once)


def test_two_signatures_both_verify(signed_once: bytes, signed_twice: bytes,
                                   ca: TenantCertificates) -> None:
    assert signed_twice[:len(signed_once)] == signed_once
    result = verify_pdf(signed_twice, ca.ca_cert_pem)
    assert result.ok and result.intact and result.trusted
    borrower, lender = result.signatures
    assert (borrower.field_name, lender.field_name) == (BORROWER_FIELD, LENDER_FIELD)
    assert borrower.intact and borrower.valid and borrower.trusted and borrower.docmdp_ok
    assert not borrower.covers_whole_document  # the lender's signature came after it
    assert borrower.modification_level == "FORM_FILLING"
    assert lender.covers_whole_document and lender.modification_level == "NONE"


def test_borrower_and_lender_with_their_own_certificates(pdf: bytes,
                                                         ca: TenantCertificates) -> None:
    key, cert = issue_signer_certificate(ca.ca_key_pem, ca.ca_cert_pem, "张三",
                                         key_type="ec")
    once = sign_pdf(pdf, key, cert, ca.ca_cert_pem, BORROWER_FIELD, "借款人签署", "上海")
    twice = sign(once, ca, LENDER_FIELD)
    result = verify_pdf(twice, ca.ca_cert_pem)
    assert result.ok
    assert [s.signer_cn for s in result.signatures] == ["张三", f"{TENANT} 电子合同签章"]


def test_a_byte_changed_after_signing_is_not_intact(signed_once: bytes, signed_twice: bytes,
                                                   ca: TenantCertificates) -> None:
    for signed in (signed_once, signed_twice):
        tampered = flip_content_byte(signed)
        assert tampered != signed and len(tampered) == len(signed)
        result = verify_pdf(tampered, ca.ca_cert_pem)
        assert result.signatures and not result.ok
        assert not result.intact and not result.valid
        assert all(not s.intact for s in result.signatures)


def test_a_change_appended_after_signing_is_caught(signed_twice: bytes,
                                                  ca: TenantCertificates) -> None:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    w = IncrementalPdfFileWriter(BytesIO(signed_twice))
    page_ref, _ = w.find_page_for_modification(0)
    page = page_ref.get_object()
    extra = w.add_object(generic.StreamObject(stream_data=b"q 1 0 0 rg 90 90 60 60 re f Q"))
    page["/Contents"] = generic.ArrayObject([page.raw_get("/Contents"), extra])
    w.update_container(page)
    out = BytesIO()
    w.write(out)
    result = verify_pdf(out.getvalue(), ca.ca_cert_pem)
    assert result.intact and result.trusted  # the signed revisions themselves are unchanged
    assert not result.covers_whole_document and not result.ok
    assert all(s.docmdp_ok is False and s.modification_level == "OTHER"
               for s in result.signatures)


def test_untrusted_ca_is_reported_untrusted(pdf: bytes, ca: TenantCertificates,
                                           other_ca: TenantCertificates) -> None:
    signed = sign(pdf, other_ca)
    result = verify_pdf(signed, ca.ca_cert_pem)
    assert result.intact and result.valid and not result.trusted and not result.ok
    assert result.signer_cn == "另一家贷款公司 电子合同签章"
    assert verify_pdf(signed, other_ca.ca_cert_pem).ok
    assert verify_pdf(signed, [ca.ca_cert_pem, other_ca.ca_cert_pem]).ok
    assert not verify_pdf(signed, []).trusted  # no roots: never the system's


def test_expired_signer_is_no_longer_trusted(pdf: bytes, ca: TenantCertificates) -> None:
    key, cert = issue_signer_certificate(ca.ca_key_pem, ca.ca_cert_pem, "张三", years=1,
                                         key_type="ec")
    signed = sign_pdf(pdf, key, cert, ca.ca_cert_pem, BORROWER_FIELD)
    later = datetime.now(UTC) + timedelta(days=800)
    result = verify_pdf(signed, ca.ca_cert_pem, at=later)
    assert result.intact and not result.trusted  # a B-B signature has no trusted time


def test_unsigned_and_unreadable_documents(pdf: bytes, ca: TenantCertificates) -> None:
    unsigned = verify_pdf(pdf, ca.ca_cert_pem)
    assert not unsigned.ok and not unsigned.intact and unsigned.signatures == ()
    assert unsigned.error == "no signatures"
    garbage = verify_pdf(b"not a pdf", ca.ca_cert_pem)
    assert not garbage.ok and garbage.error


def test_signing_refusals(pdf: bytes, signed_once: bytes, ca: TenantCertificates,
                          other_ca: TenantCertificates) -> None:
    cases = [
        (signed_once, ca.signer_key_pem, ca.signer_cert_pem, BORROWER_FIELD, "filled"),
        (pdf, other_ca.signer_key_pem, ca.signer_cert_pem, BORROWER_FIELD, "does not match"),
        (pdf, b"junk", ca.signer_cert_pem, BORROWER_FIELD, "cannot be read"),
        (b"%PDF-junk", ca.signer_key_pem, ca.signer_cert_pem, BORROWER_FIELD, "PDF"),
        (pdf, ca.signer_key_pem, ca.signer_cert_pem, "a.b", "field name"),
    ]
    for doc, key, cert, field, said in cases:
        with pytest.raises(SigningError) as caught:
            sign_pdf(doc, key, cert, ca.ca_cert_pem, field)
        assert said in caught.value.en and caught.value.zh


def test_a_new_field_is_created_when_missing(pdf: bytes, ca: TenantCertificates) -> None:
    signed = sign(pdf, ca, "guarantor")
    result = verify_pdf(signed, ca.ca_cert_pem)
    assert result.ok and result.signatures[0].field_name == "guarantor"


async def test_async_sign_and_verify_inside_an_event_loop(pdf: bytes,
                                                          ca: TenantCertificates) -> None:
    signed = await async_sign_pdf(pdf, ca.signer_key_pem, ca.signer_cert_pem,
                                  ca.ca_cert_pem, LENDER_FIELD, "贷款人签署", "北京")
    result = await async_verify_pdf(signed, ca.ca_cert_pem)
    assert result.ok and result.signatures[0].field_name == LENDER_FIELD
