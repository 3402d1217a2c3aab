"""Standalone verification of an audit export: needs only this module, core.audit's hashing
and `cryptography`, never the database.

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

from core.audit import ChainChecker, Verdict


def key_id(public_b64: str) -> str:
    return hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:16]


def checkpoint_message(tenant_id: str, seq: int, head_hash: str, at: str) -> bytes:
    return f"xindai-audit-checkpoint|{tenant_id}|{seq}|{head_hash}|{at}".encode()


def _public(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))


def verify_export(path: str | Path, pinned_public_key: str | None = None) -> Verdict:
    """Check an export zip; the Verdict names the first broken entry or what else failed."""
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
    lines = zf.read("entries.jsonl").decode().splitlines()
    if manifest["count"] == 0:
        checker = ChainChecker()
        head = None
    else:
        checker = ChainChecker(manifest["start_prev_hash"], manifest["first_seq"])
        head = (manifest["last_seq"], manifest["last_hash"])
    for line in lines:
        if not checker.feed(json.loads(line)):
            break
    verdict = checker.verdict(head)
    if not verdict.ok:
        return verdict
    for name, expected in manifest["files"].items():
        if hashlib.sha256(zf.read(name)).hexdigest() != expected:
            return Verdict(False, verdict.checked, None, f"{name} differs from the manifest")
    entries_by_seq = {json.loads(line)["seq"]: json.loads(line)["hash"] for line in lines}
    for line in zf.read("checkpoints.jsonl").decode().splitlines():
        cp = json.loads(line)
        try:
            _public(public).verify(base64.b64decode(cp["signature"]), checkpoint_message(
                manifest["tenant_id"], cp["seq"], cp["hash"], cp["at"]))
        except (InvalidSignature, ValueError):
            return Verdict(False, verdict.checked, cp["seq"], "checkpoint signature invalid")
        if cp["seq"] in entries_by_seq and entries_by_seq[cp["seq"]] != cp["hash"]:
            return Verdict(False, verdict.checked, cp["seq"], "differs from its checkpoint")
    return verdict
