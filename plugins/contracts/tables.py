"""Contracts tables: templates per product (versioned), contracts with their signing status,
the status history, the tenant's signing certificates and the callbacks already seen.

Contracts are purpose-built tables, not registry entities: a contract's status moves only
through its state machine (plugins.contracts.service), never through a generic form. Money
is integer 分; the PDFs live in the kernel's encrypted document store (their ids here)."""

from __future__ import annotations

import uuid

from piccolo.columns import JSON, UUID, BigInt, Boolean, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

from core.tables import TenantOwned, utcnow


class ContractTemplate(TenantOwned, Table, tablename="contract_template"):
    """One version of a product's contract template (`product` "*" is the tenant default).
    Saving writes a new version; the newest active version is used."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    product = Varchar(length=40)
    version = Integer(default=1)
    name = Varchar(length=200)
    body = Text()
    active = Boolean(default=True)
    created_at = Timestamptz(default=utcnow)
    created_by = Varchar(length=64, null=True, default=None)
    # unique (tenant_id, product, version): index contract_template_version


class Contract(TenantOwned, Table, tablename="contract"):
    """A loan contract: generated -> sent -> borrower_signed -> signed, or cancelled /
    expired. The borrower's details are in the (encrypted) PDF, not in clear here."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    number = Varchar(length=40)
    application_id = UUID()
    application_number = Varchar(length=60, default="")
    customer_id = UUID()
    product = Varchar(length=40)
    amount = BigInt()  # 分
    periods = Integer()
    annual_rate = Varchar(length=20)
    apr = Varchar(length=20, default="")
    template_id = UUID(null=True, default=None)
    template_version = Integer(default=0)
    status = Varchar(length=20, default="generated")
    provider = Varchar(length=20, default="local")  # local | remote
    flow_id = Varchar(length=100, null=True, default=None)  # the provider's signing flow
    unsigned_document_id = UUID(null=True, default=None)
    partial_document_id = UUID(null=True, default=None)  # borrower signed, lender not yet
    signed_document_id = UUID(null=True, default=None)
    unsigned_sha256 = Varchar(length=64, default="")
    signed_sha256 = Varchar(length=64, default="")
    otp_digest = Varchar(length=64, null=True, default=None)  # HMAC of the one-time code
    otp_expires_at = Timestamptz(null=True, default=None)
    otp_attempts = Integer(default=0)
    verification = JSON(default={})  # the last verify_pdf result (as_dict)
    signed_at = Timestamptz(null=True, default=None)
    owner_id = UUID(null=True, default=None)  # the officer who generated it
    org_unit_id = UUID(null=True, default=None)
    version = Integer(default=1)
    created_at = Timestamptz(default=utcnow)
    updated_at = Timestamptz(default=utcnow)
    created_by = Varchar(length=64, null=True, default=None)
    # unique (tenant_id, number): index contract_number


class ContractEvent(TenantOwned, Table, tablename="contract_event"):
    """The contract's status history: every transition, every provider callback."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    contract_id = UUID()
    at = Timestamptz(default=utcnow)
    action = Varchar(length=40)
    status_from = Varchar(length=20, default="")
    status_to = Varchar(length=20, default="")
    actor = Varchar(length=64, null=True, default=None)
    detail = JSON(default={})


class ContractCertificate(TenantOwned, Table, tablename="contract_certificate"):
    """The tenant's signing PKI (signing.new_tenant_ca): certificates in clear, private keys
    sealed with the tenant's data key (crypto-shredding the tenant destroys them)."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    ca_cert_pem = Text()
    signer_cert_pem = Text()
    ca_key_sealed = Text()
    signer_key_sealed = Text()
    active = Boolean(default=True)
    created_at = Timestamptz(default=utcnow)


class ContractCallback(TenantOwned, Table, tablename="contract_callback"):
    """Provider callbacks already accepted, by their nonce: a replay is refused."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    nonce = Varchar(length=100)
    flow_id = Varchar(length=100)
    received_at = Timestamptz(default=utcnow)
    # unique (tenant_id, nonce): index contract_callback_nonce


class ContractApproval(TenantOwned, Table, tablename="contract_approval"):
    """The approvals seen on `application.approved`: what a contract may be generated for
    (the manual 生成合同 action reads them; contracts never invent loan terms)."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    application_id = UUID()
    number = Varchar(length=60, default="")
    customer_id = UUID()
    product = Varchar(length=40)
    amount = Varchar(length=30)
    periods = Integer()
    annual_rate = Varchar(length=20, null=True, default=None)
    approved_at = Timestamptz(default=utcnow)
    # unique (tenant_id, application_id): index contract_approval_application


class ContractSigningConfig(TenantOwned, Table, tablename="contract_signing_config"):
    """How the tenant signs: `local` (in person, the tenant's certificate) or `remote` (an
    e签宝 / 法大大 style service at `base_url`); the app secret sealed with the data key."""

    id = UUID(primary_key=True, default=uuid.uuid4)
    provider = Varchar(length=20, default="local")
    base_url = Varchar(length=300, default="")
    app_id = Varchar(length=100, default="")
    secret_sealed = Text(default="")
    updated_at = Timestamptz(default=utcnow)


CONTRACT_TABLES = [ContractTemplate, Contract, ContractEvent, ContractCertificate,
                   ContractCallback, ContractApproval, ContractSigningConfig]
