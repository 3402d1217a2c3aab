"""Encrypted document files: the chunked format, and where the files are kept.

A file is a header followed by sealed chunks, so a 20 MiB upload or download never sits in
memory whole:

    header  b"XDOC" | format (1 byte) | data key version (4) | chunk size (4)
    chunk   12-byte random nonce | AES-256-GCM(plaintext chunk) (chunk size + 16 bytes;
            the last chunk may be shorter, and an empty file is one empty last chunk)

The key is the document's own HKDF subkey of the tenant's data key (`TenantKeys.
document_cipher`). Each chunk's associated data is `tenant | document id | key version |
chunk index | last-chunk flag`: a file copied to another document or tenant, chunks swapped,
dropped or duplicated, or a file cut short all fail to decrypt (`DocumentCorrupt` names
what). The flag is the STREAM construction's defence against truncation at a chunk edge.

Storage sees ciphertext only. `LocalStorage` keeps files under the document directory
(`<dir>/<tenant>/<first two hex digits of the id>/<id>`), writing a temporary file that is
renamed into place on commit, so a reader never sees half a file. An object-storage plugin
replaces it through `choose_provider(kind="document_storage")` with any object that has the
`DocumentStorage` methods.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import anyio
from cryptography.exceptions import InvalidTag

from core.crypto import DecryptionError, TenantKeys

MAGIC = b"XDOC"
FORMAT = 1
CHUNK = 64 * 1024
NONCE = 12
TAG = 16
HEADER = struct.Struct(">4sBII")
READ_SIZE = 256 * 1024


class DocumentCorrupt(DecryptionError):
    """A document file does not decrypt: another document's or tenant's file, chunks
    reordered or changed, cut short, or its data key is gone."""


class DocumentMissing(Exception):
    """The storage has no file for this document."""


def _aad(tenant_id: uuid.UUID, document_id: uuid.UUID, version: int, index: int,
         last: bool) -> bytes:
    return f"xindai-doc|{tenant_id}|{document_id}|{version}|{index}|{int(last)}".encode()


class Encryptor:
    """Seals a document incrementally: `feed` plaintext as it arrives, then `finish`. Each
    returns the ciphertext bytes ready to store (the header comes with the first call)."""

    def __init__(self, keys: TenantKeys, document_id: uuid.UUID,
                 version: int | None = None) -> None:
        self.version = keys.active_version if version is None else version
        self._cipher = keys.document_cipher(document_id, self.version)
        self._tenant, self._doc = keys.tenant_id, document_id
        self._pending = bytearray()
        self._index = 0
        self._header = HEADER.pack(MAGIC, FORMAT, self.version, CHUNK)

    def _seal(self, plain: bytes, last: bool) -> bytes:
        nonce = os.urandom(NONCE)
        aad = _aad(self._tenant, self._doc, self.version, self._index, last)
        self._index += 1
        return nonce + self._cipher.encrypt(nonce, plain, aad)

    def _start(self) -> list[bytes]:
        out = [self._header] if self._header else []
        self._header = b""
        return out

    def feed(self, data: bytes) -> bytes:
        out = self._start()
        self._pending += data
        # keep at least one byte back: only `finish` knows which chunk is the last
        while len(self._pending) > CHUNK:
            out.append(self._seal(bytes(self._pending[:CHUNK]), False))
            del self._pending[:CHUNK]
        return b"".join(out)

    def finish(self) -> bytes:
        out = self._start()
        out.append(self._seal(bytes(self._pending), True))
        self._pending.clear()
        return b"".join(out)


class Decryptor:
    """Opens a document incrementally: `feed` ciphertext in pieces of any size, then
    `finish`; raises DocumentCorrupt at the first chunk that does not authenticate."""

    def __init__(self, keys: TenantKeys, document_id: uuid.UUID) -> None:
        self._keys, self._doc = keys, document_id
        self._buffer = bytearray()
        self._cipher = None
        self.version = 0
        self._record = 0
        self._index = 0

    def _open(self, record: bytes, last: bool) -> bytes:
        aad = _aad(self._keys.tenant_id, self._doc, self.version, self._index, last)
        try:
            plain = self._cipher.decrypt(record[:NONCE], record[NONCE:], aad)  # type: ignore[union-attr]
        except InvalidTag:
            what = "is cut short or its last chunk was changed" if last else \
                f"chunk {self._index} does not decrypt"
            raise DocumentCorrupt(
                f"document {self._doc} {what} (another document's or tenant's file, chunks "
                f"reordered or changed, or truncated)") from None
        self._index += 1
        return plain

    def _read_header(self) -> None:
        magic, fmt, version, chunk = HEADER.unpack_from(self._buffer)
        if magic != MAGIC or fmt != FORMAT or not 0 < chunk <= 16 * 1024 * 1024:
            raise DocumentCorrupt(f"document {self._doc}: not an encrypted document file")
        if version not in self._keys.keys:
            raise DocumentCorrupt(f"document {self._doc}: data key version {version} is gone")
        self.version, self._record = version, NONCE + chunk + TAG
        self._cipher = self._keys.document_cipher(self._doc, version)
        del self._buffer[:HEADER.size]

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        if self._cipher is None:
            if len(self._buffer) < HEADER.size:
                return b""
            self._read_header()
        out = []
        while len(self._buffer) > self._record:  # more follows: not the last chunk
            out.append(self._open(bytes(self._buffer[:self._record]), False))
            del self._buffer[:self._record]
        return b"".join(out)

    def finish(self) -> bytes:
        if self._cipher is None or len(self._buffer) < NONCE + TAG:
            raise DocumentCorrupt(f"document {self._doc} is cut short (truncated file)")
        plain = self._open(bytes(self._buffer), True)
        self._buffer.clear()
        return plain


async def decrypt_stream(keys: TenantKeys, document_id: uuid.UUID,
                         source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Plaintext pieces of a stored file, decrypted chunk by chunk as it is read."""
    opener = Decryptor(keys, document_id)
    async for piece in source:
        plain = opener.feed(piece)
        if plain:
            yield plain
    last = opener.finish()
    if last:
        yield last


# --- storage -----------------------------------------------------------------------------

class StorageWriter(Protocol):
    """One file being written: invisible to readers until `commit`."""

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> None:
        """Make the file visible under its id at once, replacing an older one."""

    async def abort(self) -> None:
        """Drop what was written (nothing visible changes); harmless after commit."""


class DocumentStorage(Protocol):
    """Where encrypted files live. It only ever sees ciphertext."""

    async def open_write(self, tenant_id: uuid.UUID, document_id: uuid.UUID
                         ) -> StorageWriter: ...

    def read(self, tenant_id: uuid.UUID, document_id: uuid.UUID) -> AsyncIterator[bytes]:
        """The stored bytes in pieces; raises DocumentMissing if there is no file."""

    async def delete(self, tenant_id: uuid.UUID, document_id: uuid.UUID) -> None:
        """Remove one file (no error if it is already gone)."""

    async def delete_tenant(self, tenant_id: uuid.UUID) -> int:
        """Remove every file of a tenant (crypto-shredding); returns how many."""


def _private_dirs(folder: Path) -> None:
    """Create `folder` and its missing parents with mode 0700 (mkdir(parents=True) would
    give the parents the umask's mode)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)


class _LocalWriter:
    def __init__(self, final: Path) -> None:
        self.final = final
        _private_dirs(final.parent)
        fd, name = tempfile.mkstemp(prefix=f".tmp-{final.name}-", dir=final.parent)
        self.temp = Path(name)
        self.fh = os.fdopen(fd, "wb")  # mkstemp makes it 0600
        self.done = False

    async def write(self, data: bytes) -> None:
        await anyio.to_thread.run_sync(self.fh.write, data)

    async def commit(self) -> None:
        def finish() -> None:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            os.replace(self.temp, self.final)
            dir_fd = os.open(self.final.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the rename itself survives a crash
            finally:
                os.close(dir_fd)

        await anyio.to_thread.run_sync(finish)
        self.done = True

    async def abort(self) -> None:
        if self.done:
            return
        self.done = True
        self.fh.close()
        self.temp.unlink(missing_ok=True)


class LocalStorage:
    """Files under one directory on a local (or mounted) file system."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, tenant_id: uuid.UUID, document_id: uuid.UUID) -> Path:
        name = str(document_id)
        return self.root / str(tenant_id) / name[:2] / name

    async def open_write(self, tenant_id: uuid.UUID, document_id: uuid.UUID) -> _LocalWriter:
        return await anyio.to_thread.run_sync(_LocalWriter, self.path(tenant_id, document_id))

    async def read(self, tenant_id: uuid.UUID, document_id: uuid.UUID) -> AsyncIterator[bytes]:
        try:
            fh = await anyio.open_file(self.path(tenant_id, document_id), "rb")
        except FileNotFoundError:
            raise DocumentMissing(str(document_id)) from None
        async with fh:
            while piece := await fh.read(READ_SIZE):
                yield piece

    async def delete(self, tenant_id: uuid.UUID, document_id: uuid.UUID) -> None:
        await anyio.to_thread.run_sync(
            lambda: self.path(tenant_id, document_id).unlink(missing_ok=True))

    async def delete_tenant(self, tenant_id: uuid.UUID) -> int:
        folder = self.root / str(tenant_id)

        def remove() -> int:
            if not folder.exists():
                return 0
            count = sum(1 for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder)
            return count

        return await anyio.to_thread.run_sync(remove)
