"""Standalone verification of an audit export: needs only this module, core.audit_chain
(the hashing), msgspec and `cryptography`; never the database, the settings or a key file.

It checks the manifest's Ed25519 signature (against the key in the manifest, or a pinned
one), recomputes the chain of entries.jsonl from the signed starting hash and names the first
entry that was changed, removed, inserted or reordered; then checks the signed last hash,
the files' SHA-256 and every checkpoint's signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.audit_chain import (
    FAST_ERRORS,
    ChainChecker,
    Verdict,
    canonical,
    decode,
    encode_canonical,
    hashed_fields,
    is_plain_json,
)


def key_id(public_b64: str) -> str:
    return hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:16]


def checkpoint_message(tenant_id: str, seq: int, head_hash: str, at: str) -> bytes:
    return f"xindai-audit-checkpoint|{tenant_id}|{seq}|{head_hash}|{at}".encode()


def _public(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))


def verify_export(path: str | Path, pinned_public_key: str | None = None) -> Verdict:
    """Check an export zip; the Verdict names the first broken entry or what else failed.

    entries.jsonl is streamed (a million entries need no more memory than one), its
    SHA-256 taken on the way."""
    try:
        zf = zipfile.ZipFile(path)
        manifest_bytes = zf.read("manifest.json")
        signature = base64.b64decode(zf.read("manifest.sig"))
        manifest: dict[str, Any] = json.loads(manifest_bytes)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        return Verdict(False, 0, None, f"not a readable export: {exc}")
    public = pinned_public_key or manifest.get("public_key", "")
    if pinned_public_key and manifest.get("public_key") != pinned_public_key:
        return Verdict(False, 0, None, "signed with another key than the pinned one")
    try:
        _public(public).verify(signature, manifest_bytes)
    except (InvalidSignature, ValueError):
        return Verdict(False, 0, None, "manifest signature invalid")
    if manifest["count"] == 0:
        checker = ChainChecker()
        head = None
    else:
        checker = ChainChecker(manifest["start_prev_hash"], manifest["first_seq"])
        head = (manifest["last_seq"], manifest["last_hash"])
    wanted = _checkpoint_seqs(zf)  # the entries whose hash a checkpoint must match
    at_checkpoints: dict[int, str] = {}
    digest = hashlib.sha256()
    with zf.open("entries.jsonl") as lines:
        for number, line in enumerate(lines, 1):
            digest.update(line)
            try:
                fed = _feed_line(checker, line)
            except (ValueError, KeyError, TypeError) as exc:  # not JSON, or not an entry
                return Verdict(False, checker.checked, None,
                               f"not a readable export: entries.jsonl line {number}: {exc!r}")
            if not fed:
                break
            if wanted is None or checker.expected - 1 in wanted:
                at_checkpoints[checker.expected - 1] = checker.prev
    verdict = checker.verdict(head)
    if not verdict.ok:
        return verdict
    for name, expected in manifest["files"].items():
        actual = digest.hexdigest() if name == "entries.jsonl" else _sha256(zf, name)
        if actual != expected:
            return Verdict(False, verdict.checked, None, f"{name} differs from the manifest")
    signers = {**(manifest.get("keyring") or {}), key_id(public): public}
    for line in zf.read("checkpoints.jsonl").decode().splitlines():
        cp = json.loads(line)
        signer = signers.get(cp.get("key_id", key_id(public)))
        if signer is None:  # a retired key the signed manifest does not vouch for
            return Verdict(False, verdict.checked, cp["seq"], "checkpoint signed by an unknown key")
        try:
            _public(signer).verify(base64.b64decode(cp["signature"]), checkpoint_message(
                manifest["tenant_id"], cp["seq"], cp["hash"], cp["at"]))
        except (InvalidSignature, ValueError):
            return Verdict(False, verdict.checked, cp["seq"], "checkpoint signature invalid")
        if cp["seq"] in at_checkpoints and at_checkpoints[cp["seq"]] != cp["hash"]:
            return Verdict(False, verdict.checked, cp["seq"], "differs from its checkpoint")
    return verdict


def _feed_line(checker: ChainChecker, line: bytes) -> bool:
    """Feed one line of entries.jsonl, through msgspec when it reads the line as json would
    (see core.audit_chain), else as before through json."""
    try:
        row = decode(line)
    except FAST_ERRORS:
        row = None
    if not is_plain_json(row):
        return checker.feed(json.loads(line))
    return checker.feed_link(row["seq"], row.get("prev_hash"), row.get("hash"), (row, line),
                             _line_body)


def _line_body(item: tuple[dict[str, Any], bytes]) -> bytes:
    row, line = item
    try:
        return encode_canonical(hashed_fields(row))
    except FAST_ERRORS:
        return canonical(hashed_fields(json.loads(line)))


def _checkpoint_seqs(zf: zipfile.ZipFile) -> set[Any] | None:
    """The positions of the export's checkpoints (None if unreadable: then every entry's
    hash is kept, and reading the checkpoints fails later as it always did)."""
    try:
        return {json.loads(line)["seq"]
                for line in zf.read("checkpoints.jsonl").decode().splitlines()}
    except (KeyError, ValueError, TypeError):
        return None


def _sha256(zf: zipfile.ZipFile, name: str) -> str:
    digest = hashlib.sha256()
    with zf.open(name) as body:
        while chunk := body.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
