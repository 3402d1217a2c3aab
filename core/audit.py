"""The tamper-evident audit log: one hash chain per tenant, appended in the writer's
transaction.

`hash = SHA-256(prev_hash || canonical JSON of the entry)`, the first `prev_hash` being 64
zeros. Appends lock the tenant's chain head (`audit_head`), so concurrent writers queue and
the chain never forks. Secret values never enter a diff in clear: they are replaced by a
keyed hash (HMAC with the tenant's key), which shows that a value changed without showing it.
The app role may only INSERT and SELECT entries; triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.tables import AuditEntry, AuditHead
from core.tenancy import Context, tenant_scope

GENESIS = "0" * 64
BATCH = 5000


def canonical(entry: dict[str, Any]) -> bytes:
    """The bytes that are hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


def chain_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(entry)).hexdigest()


def hashed_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The part of a stored entry the hash covers (everything but its own hash)."""
    at = row["at"]
    if isinstance(at, datetime):
        at = at.astimezone(UTC).isoformat()
    return {
        "tenant_id": str(row["tenant_id"]), "seq": int(row["seq"]), "at": at,
        "user_id": row["user_id"], "username": row["username"], "roles": list(row["roles"]),
        "ip": row["ip"], "user_agent": row["user_agent"], "request_id": row["request_id"],
        "action": row["action"], "entity": row["entity"], "record_id": row["record_id"],
        "diff": row["diff"], "prev_hash": row["prev_hash"],
    }


async def secret_digest(ctx: Context, entity: str, field: str, value: Any) -> str:
    """A keyed hash standing in for a secret value in a diff."""
    from core.crypto import tenant_keys
    from core.kernel import kernel

    keys = await tenant_keys(kernel().master_key, ctx.tenant_id)
    key = hashlib.sha256(b"audit|" + keys.keys[min(keys.keys)]).digest()
    mac = hmac.new(key, f"{entity}|{field}|{value}".encode(), hashlib.sha256).hexdigest()
    return f"hmac:{mac[:32]}"


async def append(ctx: Context, action: str, entity: str | None = None,
                 record_id: Any = None, diff: dict[str, Any] | None = None) -> int:
    """Append one entry to ctx's tenant chain, in the current tenant transaction."""
    async with tenant_scope(ctx):
        query = AuditHead.select().where(AuditHead.tenant_id == ctx.tenant_id)
        if AuditHead._meta.db.engine_type == "postgres":
            query = query.lock_rows("UPDATE")
        heads = await query.run()
        if not heads:
            await AuditHead.insert(AuditHead(tenant_id=ctx.tenant_id, seq=0,
                                             hash=GENESIS)).run()
            heads = await query.run()
        head = heads[0]
        entry = {
            "tenant_id": str(ctx.tenant_id), "seq": head["seq"] + 1,
            "at": datetime.now(UTC).isoformat(), "user_id": ctx.user_id,
            "username": (ctx.username or "")[:63] or None, "roles": list(ctx.roles),
            "ip": ctx.ip, "user_agent": (ctx.user_agent or "")[:300] or None,
            "request_id": ctx.request_id, "action": action[:40], "entity": entity,
            "record_id": None if record_id is None else str(record_id),
            "diff": diff or {}, "prev_hash": head["hash"],
        }
        digest = chain_hash(head["hash"], entry)
        await AuditEntry.insert(AuditEntry(
            **{**entry, "at": datetime.fromisoformat(entry["at"]),
               "tenant_id": ctx.tenant_id}, hash=digest)).run()
        await AuditHead.update({AuditHead.seq: entry["seq"], AuditHead.hash: digest}).where(
            AuditHead.tenant_id == ctx.tenant_id).run()
        return entry["seq"]


@dataclass(frozen=True)
class Verdict:
    """The result of checking a chain: ok, or the first entry (seq) that breaks it."""

    ok: bool
    checked: int
    seq: int | None = None
    problem: str = ""  # changed | removed | inserted_or_reordered | truncated

    def describe(self) -> str:
        if self.ok:
            return f"ok: {self.checked} entries, chain intact"
        if self.seq is None:
            return f"broken: {self.problem} ({self.checked} entries checked)"
        return f"broken at entry {self.seq}: {self.problem} ({self.checked} entries checked)"


class ChainChecker:
    """Checks entries fed in seq order, one at a time (so a million fit in little memory)."""

    def __init__(self, start_hash: str = GENESIS, start_seq: int = 1) -> None:
        self.expected, self.prev, self.checked = start_seq, start_hash, 0
        self.broken: Verdict | None = None
        self.ahead = False  # saw an entry before its place: removed, or reordered?

    def feed(self, row: dict[str, Any]) -> bool:
        """Check one entry; False once the chain is broken (see `verdict`).

        Entry numbers are positions in the chain: the verdict names the first position
        whose entry was changed, removed, inserted or moved.
        """
        if self.broken:
            return False
        if self.ahead:  # the entry after a gap tells a move from a removal
            problem = "inserted_or_reordered" if row["seq"] == self.expected else "removed"
            self.broken = Verdict(False, self.checked, self.expected, problem)
            return False
        self.checked += 1
        if row["seq"] > self.expected:
            self.ahead = True
        elif row["seq"] < self.expected or row["prev_hash"] != self.prev:
            self.broken = Verdict(False, self.checked, self.expected, "inserted_or_reordered")
        elif chain_hash(self.prev, hashed_fields(row)) != row["hash"]:
            self.broken = Verdict(False, self.checked, row["seq"], "changed")
        else:
            self.prev, self.expected = row["hash"], self.expected + 1
        return self.broken is None

    def verdict(self, head: tuple[int, str] | None) -> Verdict:
        """The result, given where the chain should end (None: wherever it ends)."""
        if self.ahead and not self.broken:
            self.broken = Verdict(False, self.checked, self.expected, "removed")
        if self.broken:
            return self.broken
        if head is not None and (head[0] != self.expected - 1 or head[1] != self.prev):
            return Verdict(False, self.checked, self.expected, "truncated")
        return Verdict(True, self.checked)


def check_chain(rows: Any, head: tuple[int, str] | None, start_hash: str = GENESIS,
                start_seq: int = 1) -> Verdict:
    """Check entries (in seq order) link and hash correctly and end at `head`."""
    checker = ChainChecker(start_hash, start_seq)
    for row in rows:
        if not checker.feed(row):
            break
    return checker.verdict(head)


async def verify_tenant(ctx: Context) -> Verdict:
    """Check the live chain of ctx's tenant, streaming it in batches, from its base (the
    signed checkpoint it was pruned to, or the beginning)."""
    async with tenant_scope(ctx, write=False):
        heads = await AuditHead.select().where(AuditHead.tenant_id == ctx.tenant_id).run()
        base_seq, base_hash = (heads[0]["base_seq"], heads[0]["base_hash"]) if heads \
            else (0, GENESIS)
        if base_seq and not await _base_is_signed(ctx, base_seq, base_hash):
            return Verdict(False, 0, base_seq, "unsigned_base")
    checker = ChainChecker(base_hash, base_seq + 1)
    async with tenant_scope(ctx, write=False):
        last = base_seq
        while True:
            batch = await AuditEntry.select().where(
                AuditEntry.tenant_id == ctx.tenant_id, AuditEntry.seq > last
            ).order_by(AuditEntry.seq).limit(BATCH).output(load_json=True).run()
            if not all(checker.feed(row) for row in batch) or len(batch) < BATCH:
                break
            last = batch[-1]["seq"]
        heads = await AuditHead.select().where(AuditHead.tenant_id == ctx.tenant_id).run()
        verdict = checker.verdict((heads[0]["seq"], heads[0]["hash"]) if heads
                                  else (0, GENESIS))
        if verdict.ok:  # a chain rewritten with its head still contradicts signed checkpoints
            verdict = await _against_checkpoints(ctx, base_seq, verdict)
    return verdict


async def _against_checkpoints(ctx: Context, base_seq: int, verdict: Verdict) -> Verdict:
    from core.tables import AuditCheckpoint

    checkpoints = await AuditCheckpoint.select().where(
        AuditCheckpoint.tenant_id == ctx.tenant_id, AuditCheckpoint.seq > base_seq
    ).order_by(AuditCheckpoint.seq).run()
    for cp in checkpoints:
        if not cp["seq"]:
            continue
        if not await _base_is_signed(ctx, cp["seq"], cp["hash"]):
            return Verdict(False, verdict.checked, cp["seq"], "checkpoint signature invalid")
        rows = await AuditEntry.select(AuditEntry.hash).where(
            AuditEntry.tenant_id == ctx.tenant_id, AuditEntry.seq == cp["seq"]).run()
        if not rows or rows[0]["hash"] != cp["hash"]:
            return Verdict(False, verdict.checked, cp["seq"], "differs from its checkpoint")
    return verdict


async def _base_is_signed(ctx: Context, seq: int, head_hash: str) -> bool:
    """Is the pruned chain's base a checkpoint carrying a valid signature?"""
    import base64

    from core.audit_export import _signing_key, public_key_b64
    from core.audit_verify import _public, checkpoint_message
    from core.tables import AuditCheckpoint

    rows = await AuditCheckpoint.select().where(
        AuditCheckpoint.tenant_id == ctx.tenant_id, AuditCheckpoint.seq == seq,
        AuditCheckpoint.hash == head_hash).run()
    public = _public(public_key_b64(_signing_key()))
    for row in rows:
        try:
            public.verify(base64.b64decode(row["signature"]), checkpoint_message(
                str(ctx.tenant_id), seq, head_hash, row["at"].astimezone(UTC).isoformat()))
            return True
        except Exception:  # noqa: BLE001 - any failure means "not signed"
            continue
    return False
