"""The audit chain's hash and its checker, with no database import: `core.audit` (live
chain) and `core.audit_verify` (standalone export verifier) both use it.

`hash = SHA-256(prev_hash || canonical JSON of the entry)`, the first `prev_hash` being 64
zeros; `canonical` is the definition. Verifying a million entries spends its time turning
stored JSON back into canonical bytes, so the checkers use `decode` + `encode_canonical`
(msgspec), which give exactly the bytes `canonical` gives for the same stored text (floats
kept as json would write them; `tests/unit/test_audit_canonical.py` proves it with
hypothesis). Whatever msgspec cannot read (a `NaN`, a lone surrogate, ...) goes the old
way, so the verdict never depends on which path ran.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

GENESIS = "0" * 64


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


# --- the fast path: stored JSON -> canonical bytes, byte-identical to `canonical` ---------

def _float_text(text: str) -> msgspec.Raw:
    """A JSON float as `json.dumps(json.loads(text))` writes it (msgspec would write
    `1e16` where json writes `1e+16`), kept as raw bytes for the encoder."""
    value = float(text)
    if value != value:
        return msgspec.Raw(b"NaN")
    if value in (float("inf"), float("-inf")):
        return msgspec.Raw(b"Infinity" if value > 0 else b"-Infinity")
    return msgspec.Raw(float.__repr__(value).encode())


_DECODER = msgspec.json.Decoder(float_hook=_float_text)
_ENCODER = msgspec.json.Encoder(order="sorted")
FAST_ERRORS = (msgspec.MsgspecError, TypeError, ValueError, UnicodeError, OverflowError,
               RecursionError)


def decode(text: str | bytes) -> Any:
    """Stored JSON text for `encode_canonical`; raises (see FAST_ERRORS) where msgspec
    cannot read what `json.loads` can, and the caller then takes the old path."""
    return _DECODER.decode(text)


def encode_canonical(entry: dict[str, Any]) -> bytes:
    """`canonical(entry)` for an entry built from `decode`d values (str, int, bool, None,
    lists, dicts, floats as raw json text)."""
    return _ENCODER.encode(entry)


def is_plain_json(entry: Any) -> bool:
    """Are the values json.loads would give here the ones `decode` gave (no float, whose
    Raw stand-in only the encoder understands, where code looks at the value)?"""
    return type(entry) is dict and type(entry.get("seq")) is int \
        and type(entry.get("tenant_id")) is str


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


def _dict_body(row: dict[str, Any]) -> bytes:
    return canonical(hashed_fields(row))


class ChainChecker:
    """Checks entries fed in seq order, one at a time (so a million fit in little memory)."""

    def __init__(self, start_hash: str = GENESIS, start_seq: int = 1) -> None:
        self.expected, self.prev, self.checked = start_seq, start_hash, 0
        self.broken: Verdict | None = None
        self.ahead = False  # saw an entry before its place: removed, or reordered?

    def feed(self, row: dict[str, Any]) -> bool:
        """Check one stored entry (a dict as the database or an export gives it)."""
        return self.feed_link(row["seq"], row.get("prev_hash"), row.get("hash"), row,
                              _dict_body)

    def feed_link(self, seq: int, prev_hash: str | None, digest: str | None, row: Any,
                  body: Callable[[Any], bytes]) -> bool:
        """Check one entry given its position, links and `body(row)`, the canonical bytes
        its hash covers (computed only once its links hold); False once the chain is
        broken (see `verdict`).

        Entry numbers are positions in the chain: the verdict names the first position
        whose entry was changed, removed, inserted or moved.
        """
        if self.broken:
            return False
        if self.ahead:  # the entry after a gap tells a move from a removal
            problem = "inserted_or_reordered" if seq == self.expected else "removed"
            self.broken = Verdict(False, self.checked, self.expected, problem)
            return False
        self.checked += 1
        if seq > self.expected:
            self.ahead = True
        elif seq < self.expected or prev_hash != self.prev:
            self.broken = Verdict(False, self.checked, self.expected, "inserted_or_reordered")
        elif hashlib.sha256(self.prev.encode() + body(row)).hexdigest() != digest:
            self.broken = Verdict(False, self.checked, seq, "changed")
        else:
            self.prev, self.expected = digest, self.expected + 1
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
