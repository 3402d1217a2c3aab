"""Signed checkpoints of the audit chain, and the compliance export.

The Ed25519 signing key lives outside the database (`XINDAI_AUDIT_KEY_FILE`, default
`<data dir>/audit-signing.key`, created 0600). A checkpoint signs
`xindai-audit-checkpoint|tenant|seq|hash|at`. An export is a zip of:

    entries.jsonl      one stored entry a line (the hashed fields and the hash)
    entries.csv        the same for spreadsheet readers (UTF-8 with BOM)
    checkpoints.jsonl  the signed checkpoints up to the end of the range
    manifest.json      tenant, range, first/last sequence, the hash before the first entry,
                       the last hash, the SHA-256 of every file, the public key
    manifest.sig       Ed25519 signature of manifest.json

`core.audit_verify` checks one without the database.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import stat
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.audit import GENESIS, hashed_fields
from core.audit_verify import checkpoint_message, key_id
from core.settings import SettingsError
from core.tables import AuditCheckpoint, AuditEntry, AuditHead
from core.tenancy import Context, tenant_scope

FORMAT = 1


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The checkpoint signing key (created 0600 on first use)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise SettingsError("XINDAI_AUDIT_KEY_FILE", f"{path} 权限过宽（应为 0600）",
                            f"{path} is readable by others (must be 0600)")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SettingsError("XINDAI_AUDIT_KEY_FILE", f"{path} 不是 Ed25519 私钥",
                            f"{path} is not an Ed25519 private key")
    return key


def public_key_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _signing_key() -> Ed25519PrivateKey:
    from core.kernel import kernel

    return load_signing_key(kernel().settings.audit_key_file)


def retired_keys_path(key_file: Path) -> Path:
    """Public keys of retired signing keys, kept beside the key: old checkpoints still
    verify after a rotation, and the retired private keys no longer exist."""
    return key_file.with_name(key_file.name + ".retired.json")


def keyring(key_file: Path | None = None) -> dict[str, str]:
    """key id -> public key (base64) of the current signing key and every retired one."""
    if key_file is None:
        from core.kernel import kernel

        key_file = kernel().settings.audit_key_file
    current = public_key_b64(load_signing_key(key_file))
    ring = {key_id(current): current}
    retired = retired_keys_path(key_file)
    if retired.exists():
        for item in json.loads(retired.read_text()).get("keys", []):
            ring.setdefault(item["key_id"], item["public_key"])
    return ring


def rotate_signing_key(key_file: Path) -> tuple[str, str]:
    """Replace the checkpoint signing key; the old public key joins the retired list first
    (so it is never lost), then the new private key replaces the old one atomically.
    Returns (old key id, new key id)."""
    old = public_key_b64(load_signing_key(key_file))
    retired = retired_keys_path(key_file)
    doc = json.loads(retired.read_text()) if retired.exists() else {"keys": []}
    if all(item["key_id"] != key_id(old) for item in doc["keys"]):
        doc["keys"].append({"key_id": key_id(old), "public_key": old,
                            "retired_at": datetime.now(UTC).isoformat()})
    _write_atomically(retired, json.dumps(doc, indent=2).encode(), 0o644)
    new = Ed25519PrivateKey.generate()
    _write_atomically(key_file, new.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), 0o600)
    return key_id(old), key_id(public_key_b64(new))


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


async def checkpoint(ctx: Context) -> dict[str, Any]:
    """Sign the tenant's current chain head and store the checkpoint."""
    key = _signing_key()
    pub = public_key_b64(key)
    async with tenant_scope(ctx):
        heads = await AuditHead.select().where(AuditHead.tenant_id == ctx.tenant_id).run()
        seq, head_hash = (heads[0]["seq"], heads[0]["hash"]) if heads else (0, GENESIS)
        at = datetime.now(UTC).isoformat()
        signature = base64.b64encode(key.sign(
            checkpoint_message(str(ctx.tenant_id), seq, head_hash, at))).decode()
        await AuditCheckpoint.insert(AuditCheckpoint(
            tenant_id=ctx.tenant_id, seq=seq, hash=head_hash, at=datetime.fromisoformat(at),
            key_id=key_id(pub), signature=signature)).run()
    return {"seq": seq, "hash": head_hash, "at": at, "key_id": key_id(pub),
            "signature": signature}


def _checkpoint_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"seq": row["seq"], "hash": row["hash"],
            "at": row["at"].astimezone(UTC).isoformat(), "key_id": row["key_id"],
            "signature": row["signature"]}


async def export_zip(ctx: Context, since: datetime | None = None,
                     until: datetime | None = None) -> bytes:
    """The signed export of the entries between `since` and `until` (all when None)."""
    from core.access import require

    require(ctx, "audit.export")
    await checkpoint(ctx)  # the export ends at a freshly signed head
    key = _signing_key()
    async with tenant_scope(ctx, write=False):
        where = [AuditEntry.tenant_id == ctx.tenant_id]
        if since is not None:
            where.append(AuditEntry.at >= since)
        if until is not None:
            where.append(AuditEntry.at <= until)
        rows = await AuditEntry.select().where(*where).order_by(AuditEntry.seq) \
            .output(load_json=True).run()
        cps = await AuditCheckpoint.select().where(
            AuditCheckpoint.tenant_id == ctx.tenant_id).order_by(AuditCheckpoint.seq).run()
    entries = [{**hashed_fields(r), "hash": r["hash"]} for r in rows]
    last_seq = entries[-1]["seq"] if entries else 0
    checkpoints = [_checkpoint_json(c) for c in cps if not entries or c["seq"] <= last_seq]
    files = {
        "entries.jsonl": "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n"
                                 for e in entries).encode(),
        "checkpoints.jsonl": "".join(json.dumps(c, sort_keys=True) + "\n"
                                     for c in checkpoints).encode(),
        "entries.csv": _csv(entries),
    }
    pub = public_key_b64(key)
    manifest = {
        "format": FORMAT, "tenant_id": str(ctx.tenant_id), "tenant": ctx.tenant.slug,
        "exported_at": datetime.now(UTC).isoformat(), "exported_by": ctx.username,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "count": len(entries),
        "first_seq": entries[0]["seq"] if entries else None,
        "last_seq": entries[-1]["seq"] if entries else None,
        "start_prev_hash": entries[0]["prev_hash"] if entries else None,
        "last_hash": entries[-1]["hash"] if entries else None,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "public_key": pub, "key_id": key_id(pub),
        # the public keys of the checkpoints' signers, vouched for by this manifest's key
        "keyring": {kid: k for kid, k in keyring().items()
                    if any(c["key_id"] == kid for c in checkpoints)},
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, sort_keys=True,
                                indent=2).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", manifest_bytes)
        zf.writestr("manifest.sig", base64.b64encode(key.sign(manifest_bytes)))
    from core.audit import append

    await append(ctx, "audit.export", "audit", None,
                 {"count": [None, len(entries)], "last_seq": [None, manifest["last_seq"]]})
    return buffer.getvalue()


def _csv(entries: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["seq", "at", "username", "roles", "ip", "action", "entity", "record_id",
                     "diff", "hash"])
    for e in entries:
        writer.writerow([e["seq"], e["at"], e["username"] or "", " ".join(e["roles"]),
                         e["ip"] or "", e["action"], e["entity"] or "", e["record_id"] or "",
                         json.dumps(e["diff"], ensure_ascii=False), e["hash"]])
    return ("\ufeff" + out.getvalue()).encode()


MIN_RETENTION_MONTHS = 6  # Cybersecurity Law art. 21


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (clamped to month end)."""
    import calendar

    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def retention_months(ctx: Context) -> int:
    try:
        wanted = int(ctx.tenant.settings.get("audit_retention_months", MIN_RETENTION_MONTHS))
    except (TypeError, ValueError):
        wanted = MIN_RETENTION_MONTHS
    return max(wanted, MIN_RETENTION_MONTHS)


async def prune(ctx: Context, now: datetime | None = None) -> int:
    """Delete entries older than the tenant's retention (at least six months), but only up
    to a signed checkpoint, which becomes the chain's verified base. Returns how many were
    deleted. Needs the owner role on PostgreSQL (the app role may not delete)."""
    from core.audit import append
    from core.db import fetch, is_postgres

    cutoff = months_before(now or datetime.now(UTC), retention_months(ctx))
    engine = AuditEntry._meta.db
    async with tenant_scope(ctx):
        heads = await AuditHead.select().where(AuditHead.tenant_id == ctx.tenant_id).run()
        if not heads:
            return 0  # no chain yet
        head = heads[0]
        candidates = await AuditCheckpoint.select().where(
            AuditCheckpoint.tenant_id == ctx.tenant_id, AuditCheckpoint.seq > head["base_seq"]
        ).order_by(AuditCheckpoint.seq, ascending=False).run()
        base = None
        for cp in candidates:
            entry = await AuditEntry.select(AuditEntry.at).where(
                AuditEntry.tenant_id == ctx.tenant_id, AuditEntry.seq == cp["seq"]).run()
            if entry and entry[0]["at"] < cutoff:
                base = cp
                break
        if base is None:
            return 0
        count = await AuditEntry.count().where(AuditEntry.tenant_id == ctx.tenant_id,
                                               AuditEntry.seq <= base["seq"]).run()
        if is_postgres(engine):
            await fetch(engine, "SELECT set_config('xindai.audit_prune', 'on', true)")
        else:
            await engine.run_ddl("DROP TRIGGER audit_entry_no_delete")
        await AuditEntry.delete().where(AuditEntry.tenant_id == ctx.tenant_id,
                                        AuditEntry.seq <= base["seq"]).run()
        if is_postgres(engine):
            await fetch(engine, "SELECT set_config('xindai.audit_prune', 'off', true)")
        else:
            await engine.run_ddl(
                "CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry "
                "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END")
        await AuditHead.update({AuditHead.base_seq: base["seq"],
                                AuditHead.base_hash: base["hash"]}).where(
            AuditHead.tenant_id == ctx.tenant_id).run()
        await append(ctx, "audit.prune", "audit", None,
                     {"deleted": [None, count], "base_seq": [None, base["seq"]],
                      "cutoff": [None, cutoff.isoformat()]})
    return count
