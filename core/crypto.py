"""Envelope encryption of secret fields, and blind indexes for exact search.

A master key (env `XINDAI_MASTER_KEY` or a 0600 key file) wraps one random data key per
tenant and key version. Each (entity, field) gets its own AES-256-GCM subkey and HMAC key
through HKDF. A ciphertext is `version byte | key version (4 bytes) | 12-byte nonce | GCM
output`, base64-encoded, with `tenant|entity|field|row id|key version` as associated data,
so a value copied to another row, field or tenant fails to decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
import struct
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.settings import Settings, SettingsError
from core.tables import TenantKey

FORMAT_VERSION = 1
_HEADER = struct.Struct(">BI")


class DecryptionError(Exception):
    """A ciphertext did not authenticate: wrong key, row, field or tenant, or tampered."""


def load_master_key(settings: Settings) -> bytes:
    """Read the master key from the environment or the key file, creating the file (0600)."""
    if settings.master_key:
        try:
            key = base64.b64decode(settings.master_key, validate=True)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise SettingsError(
                "XINDAI_MASTER_KEY", "应为 32 字节密钥的 Base64 编码",
                "must be the base64 encoding of 32 bytes",
            )
        return key
    path: Path = settings.key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64encode(os.urandom(32)))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SettingsError(
            "XINDAI_KEY_FILE", f"{path} 权限过宽（应为 0600）",
            f"{path} is readable by others (must be 0600)",
        )
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise SettingsError("XINDAI_KEY_FILE", f"{path} 不是有效的密钥文件",
                            f"{path} is not a valid key file")
    return key


def _aad(tenant_id: uuid.UUID, purpose: str) -> bytes:
    return f"xindai|{purpose}|{tenant_id}".encode()


def wrap_data_key(master: bytes, tenant_id: uuid.UUID, version: int, data_key: bytes) -> str:
    nonce = os.urandom(12)
    ct = AESGCM(master).encrypt(nonce, data_key, _aad(tenant_id, f"dk|{version}"))
    return base64.b64encode(nonce + ct).decode()


def unwrap_data_key(master: bytes, tenant_id: uuid.UUID, version: int, wrapped: str) -> bytes:
    raw = base64.b64decode(wrapped)
    try:
        return AESGCM(master).decrypt(raw[:12], raw[12:], _aad(tenant_id, f"dk|{version}"))
    except InvalidTag:
        raise DecryptionError("data key does not unwrap with this master key") from None


@lru_cache(maxsize=4096)
def _subkey(data_key: bytes, info: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info.encode()).derive(
        data_key
    )


@lru_cache(maxsize=4096)
def _cipher(data_key: bytes, entity: str, field_key: str) -> AESGCM:
    return AESGCM(_subkey(data_key, f"enc|{entity}|{field_key}"))


@dataclass
class TenantKeys:
    """One tenant's unwrapped data keys, by version; the highest version encrypts."""

    tenant_id: uuid.UUID
    keys: dict[int, bytes] = field(default_factory=dict, repr=False)

    @property
    def active_version(self) -> int:
        return max(self.keys)

    def encrypt(self, entity: str, field_key: str, row_id: uuid.UUID, plaintext: str) -> str:
        version = self.active_version
        nonce = os.urandom(12)
        aad = f"{self.tenant_id}|{entity}|{field_key}|{row_id}|{version}".encode()
        ct = _cipher(self.keys[version], entity, field_key).encrypt(
            nonce, plaintext.encode(), aad
        )
        return base64.b64encode(_HEADER.pack(FORMAT_VERSION, version) + nonce + ct).decode()

    def decrypt(self, entity: str, field_key: str, row_id: uuid.UUID, token: str) -> str:
        raw = base64.b64decode(token)
        fmt, version = _HEADER.unpack_from(raw)
        if fmt != FORMAT_VERSION or version not in self.keys:
            raise DecryptionError("unknown ciphertext format or key version")
        nonce, ct = raw[_HEADER.size:_HEADER.size + 12], raw[_HEADER.size + 12:]
        aad = f"{self.tenant_id}|{entity}|{field_key}|{row_id}|{version}".encode()
        try:
            return _cipher(self.keys[version], entity, field_key).decrypt(nonce, ct, aad).decode()
        except InvalidTag:
            raise DecryptionError(f"{entity}.{field_key} of {row_id} does not decrypt") from None

    def document_cipher(self, document_id: uuid.UUID, version: int) -> AESGCM:
        """The AES-256-GCM key of one document's file under data key `version` (HKDF, not
        cached: one derivation per file opened). A file copied to another document id or
        tenant derives another key and fails to decrypt."""
        if version not in self.keys:
            raise DecryptionError(f"data key version {version} is not available")
        return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                           info=f"doc|{self.tenant_id}|{document_id}".encode())
                      .derive(self.keys[version]))

    def content_mac_key(self) -> bytes:
        """HMAC key for document content digests; from the first key version, so a digest
        stays comparable across rotations (like blind indexes)."""
        return _subkey(self.keys[min(self.keys)], f"docmac|{self.tenant_id}")

    def blind_index(self, entity: str, field_key: str, normalised: str) -> str:
        """Keyed HMAC of the normalised value; uses the first key version so it is stable."""
        key = _subkey(self.keys[min(self.keys)], f"bidx|{self.tenant_id}|{entity}|{field_key}")
        return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()


_cache: dict[uuid.UUID, tuple[float, TenantKeys]] = {}
CACHE_SECONDS = 60  # other processes pick up a rotated key version within a minute


def token_version(token: str) -> int:
    """The data key version a ciphertext was made with (read from its header)."""
    return _HEADER.unpack_from(base64.b64decode(token))[1]


async def tenant_keys(master: bytes, tenant_id: uuid.UUID) -> TenantKeys:
    """The tenant's keys (cached briefly). Read in the tenant's scope (RLS on PostgreSQL):
    the caller's, or a short read-only one of its own when called outside any."""
    import time

    from core.tenancy import Context, get_tenant_by_id, scoped_tenant, tenant_scope

    cached = _cache.get(tenant_id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    if scoped_tenant() != tenant_id:
        tenant = await get_tenant_by_id(tenant_id)
        async with tenant_scope(Context.system(tenant), write=False):
            return await tenant_keys(master, tenant_id)
    rows = await TenantKey.select().where(TenantKey.tenant_id == tenant_id).run()
    if not rows:
        raise DecryptionError(f"tenant {tenant_id} has no data key")
    keys = TenantKeys(tenant_id, {
        r["version"]: unwrap_data_key(master, tenant_id, r["version"], r["wrapped"]) for r in rows
    })
    _cache[tenant_id] = (time.monotonic() + CACHE_SECONDS, keys)
    return keys


async def create_tenant_key(master: bytes, tenant_id: uuid.UUID) -> int:
    """Create the next data key version for a tenant (version 1 at onboarding)."""
    rows = await TenantKey.select(TenantKey.version).where(TenantKey.tenant_id == tenant_id).run()
    version = max((r["version"] for r in rows), default=0) + 1
    wrapped = wrap_data_key(master, tenant_id, version, os.urandom(32))
    await TenantKey.insert(TenantKey(tenant_id=tenant_id, version=version, wrapped=wrapped)).run()
    _cache.pop(tenant_id, None)
    return version


def forget_cached_keys() -> None:
    _cache.clear()
