"""The local signer: PAdES signatures with a per-tenant certificate, and their verification.

A lender that has not contracted an e-signature service (e签宝, 法大大, ...) still needs a
signed contract that any PDF reader can check. Each tenant gets its own small PKI made with
`cryptography`: a CA certificate (the trust root a reader or an auditor imports) and a
signing certificate issued by it. `new_tenant_ca` returns them as PEM bytes and writes
nothing: the caller keeps the private keys encrypted with the tenant's data key (the
encrypted document store), never on disk in clear.

`sign_pdf` adds one PAdES baseline B-B signature (ETSI.CAdES.detached, SHA-256, the chain
embedded) as an incremental update, so a second signature (borrower, then lender) leaves the
first intact. `verify_pdf` validates every signature with pyHanko against the given trust
roots only (never the system's TLS list) and reports, per signature and overall, whether the
signed bytes are intact, the signature valid, the signer trusted, and whether it covers the
whole file (anything appended after the last signature is then visible).

pyHanko's synchronous entry points call `asyncio.run`, which fails inside a running event
loop (a Litestar handler); `async_sign_pdf` and `async_verify_pdf` are for that case.

A B-B signature carries no trusted time: once the signing certificate expires, it no longer
validates as trusted at the current time. Timestamps (B-T) and long-term validation data
(B-LT/LTA) need a time-stamping authority; a provider plugin brings those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

KeyType = Literal["rsa", "ec"]
CN_MAX = 64  # ub-common-name (RFC 5280), UTF-8 bytes here; organisationName the same
CA_SUFFIX = " 电子合同根证书"
SIGNER_SUFFIX = " 电子合同签章"
# The visible stamp's text: pyHanko's built-in stamp fonts have no CJK glyphs, so the
# stamp is ASCII; the Chinese labels are printed next to the field by render.py.
STAMP_TEXT = "Digitally signed\n%(ts)s"


class SigningError(ValueError):
    """A signature that could not be made, said in zh-CN and en."""

    def __init__(self, zh: str, en: str) -> None:
        self.zh, self.en = zh, en
        super().__init__(f"{zh} / {en}")


# --- certificates ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TenantCertificates:
    """A tenant's CA and signing certificate, PEM. The keys are unencrypted PKCS#8: store
    them encrypted (the CA key is only needed to issue the next signing certificate)."""

    ca_key_pem: bytes = field(repr=False)
    ca_cert_pem: bytes
    signer_key_pem: bytes = field(repr=False)
    signer_cert_pem: bytes


def _new_key(key_type: KeyType) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"key_type must be 'rsa' or 'ec', got {key_type!r}")


def _fit(text: str, limit: int = CN_MAX) -> str:
    """`text` cut at a character boundary to `limit` UTF-8 bytes (cryptography counts the
    bound in bytes: 21 Chinese characters)."""
    out = text
    while len(out.encode()) > limit:
        out = out[:-1]
    return out


def _name(tenant_name: str, suffix: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _fit(tenant_name)),
        x509.NameAttribute(NameOID.COMMON_NAME,
                           _fit(tenant_name, CN_MAX - len(suffix.encode())) + suffix),
    ])


def _pem_key(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


_CA_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False)
_SIGNER_USAGE = x509.KeyUsage(  # content_commitment is non-repudiation
    digital_signature=True, content_commitment=True, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
    encipher_only=False, decipher_only=False)


def _issue(ca_key: Any, ca_cert: x509.Certificate, subject: x509.Name, start: datetime,
           years: int, key_type: KeyType) -> tuple[bytes, x509.Certificate]:
    """A signing key and certificate issued by the CA, never outliving it."""
    key = _new_key(key_type)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(start + timedelta(days=365 * years),
                             ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_SIGNER_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _pem_key(key), cert


def _start(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(hours=1)  # tolerate clock skew


def new_tenant_ca(tenant_name: str, *, ca_years: int = 20, signer_years: int = 10,
                  key_type: KeyType = "rsa", now: datetime | None = None
                  ) -> TenantCertificates:
    """A CA and a signing certificate for `tenant_name` (Chinese allowed; cut to fit the
    64-byte bound of a subject name). RSA 2048 by default: readers that predate ECDSA
    support are still common; `key_type="ec"` gives P-256. The signing certificate never
    outlives its CA."""
    name = tenant_name.strip()
    if not name:
        raise ValueError("the tenant name is empty")
    if not (1 <= signer_years <= ca_years <= 50):
        raise ValueError("need 1 <= signer_years <= ca_years <= 50")
    start = _start(now)
    ca_key = _new_key(key_type)
    ca_name = _name(name, CA_SUFFIX)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + timedelta(days=365 * ca_years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    signer_key_pem, signer_cert = _issue(ca_key, ca_cert, _name(name, SIGNER_SUFFIX), start,
                                         signer_years, key_type)
    pem = serialization.Encoding.PEM
    return TenantCertificates(ca_key_pem=_pem_key(ca_key),
                              ca_cert_pem=ca_cert.public_bytes(pem),
                              signer_key_pem=signer_key_pem,
                              signer_cert_pem=signer_cert.public_bytes(pem))


def issue_signer_certificate(ca_key_pem: bytes, ca_cert_pem: bytes, common_name: str, *,
                             organisation: str | None = None, years: int = 1,
                             key_type: KeyType = "rsa", now: datetime | None = None
                             ) -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM) for another signer under the tenant's CA: the next
    tenant signing certificate, or a short-lived one naming a borrower. A key the lender's
    server made is not in the borrower's sole control; see docs/contracts.md."""
    cn = common_name.strip()
    if not cn or len(cn.encode()) > CN_MAX:
        raise ValueError(f"the common name must be 1 to {CN_MAX} UTF-8 bytes")
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if organisation:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, _fit(organisation)))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    key_pem, cert = _issue(ca_key, ca_cert, x509.Name(attrs), _start(now), years, key_type)
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _certs(pem: bytes | Sequence[bytes]) -> list[Any]:
    """asn1crypto certificates from one PEM blob (possibly several certificates) or a list."""
    from pyhanko.keys import load_certs_from_pemder_data

    blobs = [pem] if isinstance(pem, bytes | bytearray) else list(pem)
    return [c for blob in blobs for c in load_certs_from_pemder_data(bytes(blob))]


# --- signing --------------------------------------------------------------------------------

def _check_pair(key_pem: bytes, cert_pem: bytes) -> None:
    """Refuse a key that is not the certificate's: pyHanko would sign, and every reader
    would then call the signature invalid."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    key = serialization.load_pem_private_key(key_pem, password=None)
    cert = x509.load_pem_x509_certificate(cert_pem)
    if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(der, spki):
        raise SigningError("私钥与签名证书不匹配", "the key does not match the certificate")


def _pdf_signer(signer_key_pem: bytes, signer_cert_pem: bytes, ca_cert_pem: bytes,
                field_name: str, reason: str, location: str) -> Any:
    from pyhanko.keys import load_private_key_from_pemder_data
    from pyhanko.sign import fields, signers
    from pyhanko.stamp import TextStampStyle
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    if not field_name or "." in field_name:
        raise SigningError("签名域名称不能为空或含“.”", "the field name is empty or has a '.'")
    try:
        _check_pair(signer_key_pem, signer_cert_pem)
        [cert] = _certs(signer_cert_pem)
        key = load_private_key_from_pemder_data(signer_key_pem, passphrase=None)
        chain = _certs(ca_cert_pem)
    except SigningError:
        raise
    except (ValueError, TypeError) as e:
        shown = f"{e}"[:160]
        raise SigningError(f"签名证书或私钥无法读取：{shown}",
                           f"the signing certificate or key cannot be read: {shown}") from None
    signer = signers.SimpleSigner(signing_cert=cert, signing_key=key,
                                  cert_registry=SimpleCertificateStore.from_certs(chain))
    meta = signers.PdfSignatureMetadata(
        field_name=field_name, reason=reason or None, location=location or None,
        md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
        embed_validation_info=False, use_pades_lta=False)
    return signers.PdfSigner(meta, signer,
                             stamp_style=TextStampStyle(stamp_text=STAMP_TEXT, border_width=0))


def _writer(pdf_bytes: bytes) -> Any:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.misc import PdfError

    try:
        return IncrementalPdfFileWriter(BytesIO(pdf_bytes))
    except (PdfError, ValueError) as e:
        raise SigningError(f"不是可读的 PDF：{e}", f"not a readable PDF: {e}") from None


def sign_pdf(pdf_bytes: bytes, signer_key_pem: bytes, signer_cert_pem: bytes,
             ca_cert_pem: bytes, field_name: str, reason: str = "", location: str = ""
             ) -> bytes:
    """`pdf_bytes` with one more PAdES B-B signature in the field `field_name` (filled if it
    exists and is empty, else created invisible). Not for use inside an event loop."""
    pdf_signer = _pdf_signer(signer_key_pem, signer_cert_pem, ca_cert_pem, field_name,
                             reason, location)
    return _run_signing(lambda: pdf_signer.sign_pdf(_writer(pdf_bytes)))


async def async_sign_pdf(pdf_bytes: bytes, signer_key_pem: bytes, signer_cert_pem: bytes,
                         ca_cert_pem: bytes, field_name: str, reason: str = "",
                         location: str = "") -> bytes:
    """`sign_pdf` for callers already in an event loop."""
    pdf_signer = _pdf_signer(signer_key_pem, signer_cert_pem, ca_cert_pem, field_name,
                             reason, location)
    return await _arun_signing(pdf_signer.async_sign_pdf(_writer(pdf_bytes)))


def _signing_failed(e: Exception) -> SigningError:
    return SigningError(f"签名失败：{e}", f"signing failed: {e}")


def _run_signing(call: Any) -> bytes:
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.sign.general import SigningError as PyHankoSigningError

    try:
        return call().getvalue()
    except (PyHankoSigningError, PdfError) as e:
        raise _signing_failed(e) from None


async def _arun_signing(coro: Any) -> bytes:
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.sign.general import SigningError as PyHankoSigningError

    try:
        return (await coro).getvalue()
    except (PyHankoSigningError, PdfError) as e:
        raise _signing_failed(e) from None


# --- verification ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SignatureCheck:
    """One signature's validation. `intact`: the signed bytes are unchanged; `valid`: the
    signature over them is mathematically correct (and intact); `trusted`: the signer's
    certificate chains to one of the trust roots; `covers_whole_document`: nothing was
    appended after it; `docmdp_ok`: what was appended (later signatures, form filling) is
    allowed."""

    field_name: str
    signer_cn: str | None
    signing_time: datetime | None
    intact: bool
    valid: bool
    trusted: bool
    covers_whole_document: bool
    coverage: str | None
    modification_level: str | None
    docmdp_ok: bool | None
    pades: bool
    md_algorithm: str | None
    summary: str
    error: str | None = None


@dataclass(frozen=True)
class VerificationResult:
    """Every signature of a PDF, in signing order, and the overall verdict: intact, valid
    and trusted when all signatures are; signer and time of the last one; `ok` also needs
    every later change allowed and the last signature covering the whole file."""

    signatures: tuple[SignatureCheck, ...]
    intact: bool
    valid: bool
    trusted: bool
    covers_whole_document: bool
    signer_cn: str | None
    signing_time: datetime | None
    ok: bool
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601)."""
        def plain(v: Any) -> Any:
            if isinstance(v, datetime):
                return v.isoformat()
            if isinstance(v, list | tuple):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return v

        return plain(asdict(self))


def _result(checks: list[SignatureCheck], error: str | None = None) -> VerificationResult:
    last = checks[-1] if checks else None
    every = bool(checks)
    return VerificationResult(
        signatures=tuple(checks),
        intact=every and all(c.intact for c in checks),
        valid=every and all(c.valid for c in checks),
        trusted=every and all(c.trusted for c in checks),
        covers_whole_document=bool(last and last.covers_whole_document),
        signer_cn=last.signer_cn if last else None,
        signing_time=last.signing_time if last else None,
        ok=(every and all(c.intact and c.valid and c.trusted and c.docmdp_ok is not False
                          for c in checks) and bool(last and last.covers_whole_document)),
        error=error)


def _common_name(cert: Any) -> str | None:
    try:
        return cert.subject.native.get("common_name")
    except Exception:  # noqa: BLE001 - a malformed subject is reported as no name
        return None


def _check(sig: Any, status: Any) -> SignatureCheck:
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    coverage = status.coverage
    level = status.modification_level
    return SignatureCheck(
        field_name=sig.field_name, signer_cn=_common_name(status.signing_cert),
        signing_time=status.signer_reported_dt or sig.self_reported_timestamp,
        intact=bool(status.intact), valid=bool(status.intact and status.valid),
        trusted=bool(status.trusted),
        covers_whole_document=coverage == SignatureCoverageLevel.ENTIRE_FILE,
        coverage=coverage.name if coverage is not None else None,
        modification_level=level.name if level is not None else None,
        docmdp_ok=status.docmdp_ok,
        pades=str(sig.sig_object.get("/SubFilter")) == "/ETSI.CAdES.detached",
        md_algorithm=status.md_algorithm, summary=status.summary())


def _failed(sig: Any, e: Exception) -> SignatureCheck:
    """A signature pyHanko could not even evaluate (its bytes were broken): not intact."""
    return SignatureCheck(
        field_name=getattr(sig, "field_name", "?"), signer_cn=None, signing_time=None,
        intact=False, valid=False, trusted=False, covers_whole_document=False,
        coverage=None, modification_level=None, docmdp_ok=None, pades=False,
        md_algorithm=None, summary="INVALID", error=f"{type(e).__name__}: {e}"[:300])


def _context(roots: list[Any], at: datetime | None) -> Any:
    from pyhanko_certvalidator import ValidationContext

    # trust_roots=[] means none; None would fall back to the system's TLS roots.
    return ValidationContext(trust_roots=roots, allow_fetching=False,
                             revocation_mode="soft-fail", moment=at)


async def async_verify_pdf(pdf_bytes: bytes, trust_roots_pem: bytes | Sequence[bytes],
                           at: datetime | None = None) -> VerificationResult:
    """Validate every signature of `pdf_bytes` against `trust_roots_pem` (one or more PEM
    certificates), at `at` (default now). Never raises for a broken or tampered PDF: the
    result says what failed."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature

    roots = _certs(trust_roots_pem)
    try:
        sigs = list(PdfFileReader(BytesIO(pdf_bytes)).embedded_signatures)
    except Exception as e:  # noqa: BLE001 - any parse failure is "not a verifiable PDF"
        return _result([], f"{type(e).__name__}: {e}"[:300])
    checks = []
    for sig in sigs:
        try:
            status = await async_validate_pdf_signature(sig, _context(roots, at))
            checks.append(_check(sig, status))
        except Exception as e:  # noqa: BLE001 - reported per signature, as not intact
            checks.append(_failed(sig, e))
    return _result(checks, None if checks else "no signatures")


def verify_pdf(pdf_bytes: bytes, trust_roots_pem: bytes | Sequence[bytes],
               at: datetime | None = None) -> VerificationResult:
    """`async_verify_pdf` for synchronous callers (not inside an event loop)."""
    return asyncio.run(async_verify_pdf(pdf_bytes, trust_roots_pem, at))
