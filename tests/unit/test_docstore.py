"""Unit tests for the document file format (core.docstore) and the pure helpers of
core.documents: chunked encryption round trips however the bytes are split, and a file
copied to another document or tenant, reordered, cut short, extended or changed anywhere
does not decrypt."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from core.crypto import TenantKeys
from core.docstore import (
    CHUNK,
    HEADER,
    NONCE,
    TAG,
    Decryptor,
    DocumentCorrupt,
    DocumentMissing,
    Encryptor,
    LocalStorage,
)
from core.documents import (
    clean_filename,
    content_disposition,
    human_size,
    mask_filename,
    sniff,
)

TENANT = uuid.UUID("11111111-2222-4333-8444-555555555555")
KEYS = TenantKeys(TENANT, {1: b"k" * 32, 2: b"K" * 32})
DOC = uuid.UUID("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee")
RECORD = NONCE + CHUNK + TAG


def seal(plain: bytes, keys: TenantKeys = KEYS, doc: uuid.UUID = DOC, piece: int = 10_000,
         version: int | None = None) -> bytes:
    sealer = Encryptor(keys, doc, version)
    out = [sealer.feed(plain[i:i + piece]) for i in range(0, len(plain), piece)]
    return b"".join(out) + sealer.finish()


def open_(data: bytes, keys: TenantKeys = KEYS, doc: uuid.UUID = DOC, piece: int = 7_777
          ) -> bytes:
    opener = Decryptor(keys, doc)
    out = [opener.feed(data[i:i + piece]) for i in range(0, len(data), piece)]
    return b"".join(out) + opener.finish()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5])
def test_round_trip_at_every_chunk_edge(size: int) -> None:
    plain = os.urandom(size)
    sealed = seal(plain)
    chunks = max(1, -(-size // CHUNK))
    assert len(sealed) == HEADER.size + size + chunks * (NONCE + TAG)
    assert open_(sealed) == plain
    assert size < 16 or plain[:64] not in sealed  # a byte or two may occur by chance


@hsettings(max_examples=40, deadline=None)
@given(size=st.integers(0, 4 * CHUNK), write=st.integers(1, 3 * CHUNK),
       read=st.integers(1, 3 * CHUNK))
def test_any_split_of_input_and_stored_bytes_gives_the_same_file(size: int, write: int,
                                                                 read: int) -> None:
    plain = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert open_(seal(plain, piece=write), piece=read) == plain


def test_nonces_are_fresh_each_time() -> None:
    assert seal(b"same") != seal(b"same")


def test_header_names_the_key_version_and_old_versions_still_open() -> None:
    sealed = seal(b"v1 text", version=1)
    assert HEADER.unpack_from(sealed)[2] == 1
    assert HEADER.unpack_from(seal(b"x"))[2] == 2  # the active (highest) version
    assert open_(sealed) == b"v1 text"
    gone = TenantKeys(TENANT, {2: b"K" * 32})  # version 1 shredded
    with pytest.raises(DocumentCorrupt, match="version 1 is gone"):
        open_(sealed, keys=gone)


def test_another_document_or_tenant_cannot_open_the_file() -> None:
    sealed = seal(os.urandom(1000))
    with pytest.raises(DocumentCorrupt, match="chunk|cut short"):
        open_(sealed, doc=uuid.uuid4())
    same_keys_other_tenant = TenantKeys(uuid.uuid4(), dict(KEYS.keys))
    with pytest.raises(DocumentCorrupt):
        open_(sealed, keys=same_keys_other_tenant)


def _records(sealed: bytes) -> list[bytes]:
    body = sealed[HEADER.size:]
    return [body[i:i + RECORD] for i in range(0, len(body), RECORD)]


def test_reordered_dropped_or_duplicated_chunks_fail() -> None:
    plain = os.urandom(4 * CHUNK + 10)
    sealed = seal(plain)
    head, parts = sealed[:HEADER.size], _records(sealed)
    assert len(parts) == 5
    for order in ([1, 0, 2, 3, 4], [0, 1, 3, 2, 4], [0, 2, 3, 4], [0, 1, 1, 2, 3, 4],
                  [0, 1, 2, 4, 3]):
        with pytest.raises(DocumentCorrupt):
            open_(head + b"".join(parts[i] for i in order))


@pytest.mark.parametrize("cut", [0, 5, HEADER.size, HEADER.size + NONCE + TAG - 1,
                                 HEADER.size + RECORD, HEADER.size + 2 * RECORD,
                                 HEADER.size + 2 * RECORD + 100, -1])
def test_a_file_cut_anywhere_fails(cut: int) -> None:
    sealed = seal(os.urandom(2 * CHUNK + 200))
    with pytest.raises(DocumentCorrupt):
        open_(sealed[:cut])


def test_cut_at_a_chunk_edge_of_an_exact_multiple_fails() -> None:
    sealed = seal(os.urandom(2 * CHUNK))  # two full chunks, the second is the last
    with pytest.raises(DocumentCorrupt, match="cut short"):
        open_(sealed[:HEADER.size + RECORD])
    with pytest.raises(DocumentCorrupt):
        open_(sealed + seal(b"more")[HEADER.size:])  # an appended chunk


@hsettings(max_examples=60, deadline=None)
@given(position=st.integers(0, 2 * RECORD + HEADER.size - 1), bit=st.integers(0, 7))
def test_any_flipped_bit_fails(position: int, bit: int) -> None:
    sealed = bytearray(seal(b"\x00" * (CHUNK + 300)))
    position %= len(sealed)
    sealed[position] ^= 1 << bit
    with pytest.raises(DocumentCorrupt):
        open_(bytes(sealed))


def test_not_a_document_file() -> None:
    with pytest.raises(DocumentCorrupt, match="not an encrypted document"):
        open_(b"%PDF-1.7 plain file that someone put there" * 10)


# --- local storage -----------------------------------------------------------------------

def test_local_storage_shows_a_file_only_after_commit(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "documents")
    tmp_path = tmp_path / "documents"

    async def scenario() -> None:
        writer = await store.open_write(TENANT, DOC)
        await writer.write(b"cipher")
        final = store.path(TENANT, DOC)
        assert not final.exists() and len(list(final.parent.glob(".tmp-*"))) == 1
        with pytest.raises(DocumentMissing):
            async for _ in store.read(TENANT, DOC):
                pass
        await writer.commit()
        assert final.read_bytes() == b"cipher" and not list(final.parent.glob(".tmp-*"))
        assert oct(final.stat().st_mode & 0o777) == "0o600"
        assert final.relative_to(tmp_path).parts == (str(TENANT), str(DOC)[:2], str(DOC))
        assert {oct(p.stat().st_mode & 0o777) for p in (final.parent, final.parent.parent, tmp_path)} \
            == {"0o700"}
        second = await store.open_write(TENANT, DOC)  # a rewrite replaces, abort leaves
        await second.write(b"other")
        await second.abort()
        assert final.read_bytes() == b"cipher" and not list(final.parent.glob(".tmp-*"))
        assert b"".join([p async for p in store.read(TENANT, DOC)]) == b"cipher"
        await store.delete(TENANT, DOC)
        await store.delete(TENANT, DOC)  # already gone: fine
        assert not final.exists()
        other = await store.open_write(TENANT, uuid.uuid4())
        await other.write(b"x")
        await other.commit()
        assert await store.delete_tenant(TENANT) == 1
        assert not (tmp_path / str(TENANT)).exists()
        assert await store.delete_tenant(TENANT) == 0

    asyncio.run(scenario())


# --- helpers of core.documents -----------------------------------------------------------

@pytest.mark.parametrize("head,expected", [
    (b"%PDF-1.4\n%\xe2\xe3", "application/pdf"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
    (b"GIF89a", None),
    (b"<html>", None),
    (b"PK\x03\x04", None),
    (b"", None),
    (b" %PDF-1.4", None),
])
def test_types_come_from_magic_bytes(head: bytes, expected: str | None) -> None:
    assert sniff(head) == expected


@pytest.mark.parametrize("raw,clean", [
    ("王小明身份证.jpg", "王小明身份证.jpg"),
    ("C:\\Users\\张三\\合同.pdf", "合同.pdf"),
    ("../../etc/passwd", "passwd"),
    ("a\r\nContent-Type: x.pdf", "aContent-Type: x.pdf"),
    ("", "document"),
    (None, "document"),
    ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
])
def test_file_names_are_cleaned(raw: str | None, clean: str) -> None:
    assert clean_filename(raw) == clean


def test_masked_names_keep_the_extension_only() -> None:
    assert mask_filename("王小明身份证正面.png") == "王***.png"
    assert mask_filename("contract") == "c***"
    assert len(mask_filename("x" * 90 + "." + "y" * 90)) <= 100


def test_content_disposition_carries_utf8_names_safely() -> None:
    value = content_disposition("王小明 合同.pdf", "application/pdf", inline=False)
    assert value == ("attachment; filename=\"document.pdf\"; "
                     "filename*=UTF-8''%E7%8E%8B%E5%B0%8F%E6%98%8E%20%E5%90%88%E5%90%8C.pdf")
    value = content_disposition('scan "1";.jpg', "image/jpeg", inline=True)
    assert value.startswith('inline; filename="scan_1.jpg"; ')
    assert '"' not in value.split("filename*=")[1] and ";" not in value.split("filename*=")[1]


@pytest.mark.parametrize("n,text", [(0, "0 B"), (1023, "1023 B"), (1024, "1 KiB"),
                                    (1536, "1.5 KiB"), (20 * 1024 * 1024, "20 MiB"),
                                    (5 * 1024 * 1024 + 123, "5 MiB"), (3 << 30, "3 GiB")])
def test_human_sizes(n: int, text: str) -> None:
    assert human_size(n) == text
