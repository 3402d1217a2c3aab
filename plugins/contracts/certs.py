"""The tenant's signing certificates: made once with `signing.new_tenant_ca`, the private
keys sealed with the tenant's data key (entity "contract_certificate", the row id bound as
associated data), so they are never on disk in clear and die with a crypto-shredded tenant."""

from __future__ import annotations

import asyncio
import uuid

from core import audit
from core.crypto import tenant_keys
from core.tenancy import Context, tenant_scope
from plugins.contracts import signing
from plugins.contracts.tables import ContractCertificate

ENTITY = "contract_certificate"


def _master() -> bytes:
    from core.kernel import kernel

    return kernel().master_key


async def tenant_certificates(ctx: Context) -> signing.TenantCertificates:
    """The tenant's active CA and signing certificate (created on first use)."""
    async with tenant_scope(ctx):
        rows = await ContractCertificate.select().where(
            ContractCertificate.tenant_id == ctx.tenant_id,
            ContractCertificate.active == True,  # noqa: E712
        ).order_by(ContractCertificate.created_at, ascending=False).limit(1).run()
        keys = await tenant_keys(_master(), ctx.tenant_id)
        if rows:
            row = rows[0]
            return signing.TenantCertificates(
                ca_key_pem=keys.decrypt(ENTITY, "ca_key", row["id"],
                                        row["ca_key_sealed"]).encode(),
                ca_cert_pem=row["ca_cert_pem"].encode(),
                signer_key_pem=keys.decrypt(ENTITY, "signer_key", row["id"],
                                            row["signer_key_sealed"]).encode(),
                signer_cert_pem=row["signer_cert_pem"].encode())
        certs = await asyncio.to_thread(signing.new_tenant_ca, ctx.tenant.name)
        row_id = uuid.uuid4()
        await ContractCertificate.insert(ContractCertificate(
            id=row_id, tenant_id=ctx.tenant_id, ca_cert_pem=certs.ca_cert_pem.decode(),
            signer_cert_pem=certs.signer_cert_pem.decode(),
            ca_key_sealed=keys.encrypt(ENTITY, "ca_key", row_id, certs.ca_key_pem.decode()),
            signer_key_sealed=keys.encrypt(ENTITY, "signer_key", row_id,
                                           certs.signer_key_pem.decode()),
        )).run()
        await audit.append(ctx, "contract.certificate.create", ENTITY, row_id,
                           {"subject": [None, ctx.tenant.name]})
        return certs


async def trust_root(ctx: Context) -> bytes:
    """The tenant CA certificate (PEM): what readers and auditors import."""
    return (await tenant_certificates(ctx)).ca_cert_pem
