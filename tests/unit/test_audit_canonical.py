"""The fast canonical form (msgspec) gives exactly the bytes of the definition
(`core.audit_chain.canonical`, json) for every entry, so a verifier using it reaches the
same verdict: property tests over unicode, nested dicts, numbers, None, bools, big ints."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from core.audit import _row_body
from core.audit_chain import (
    FAST_ERRORS,
    ChainChecker,
    canonical,
    chain_hash,
    decode,
    encode_canonical,
    hashed_fields,
)
from core.audit_verify import _feed_line

PROPERTY = hsettings(max_examples=300, deadline=None, database=None)

# Every unicode scalar value (control characters, U+2028, astral planes); hypothesis leaves
# out lone surrogates, tested on their own below.
TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", "中文客户", "\u2028\u2029", "\x00\x1f\x7f\x85", '"\\/', "\U0001F600", "é", "e\u0301"])
INTS = st.integers() | st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30,
                                         -(10**40), 0])
FLOATS = st.floats() | st.sampled_from([1e16, 1e-7, 100.0, -0.0, 5e-324, 1.5e300, 0.1])
SCALARS = st.none() | st.booleans() | INTS | TEXT
JSON_NO_FLOAT = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner,
                                                                         max_size=5),
    max_leaves=25)
JSON_ANY = st.recursive(
    SCALARS | FLOATS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        TEXT, inner, max_size=5), max_leaves=25)


def entry(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An entry as `hashed_fields` builds it, with arbitrary values where JSON allows."""
    return st.fixed_dictionaries({
        "tenant_id": st.uuids().map(str), "seq": st.integers(0, 2**62), "at": TEXT,
        "user_id": st.none() | TEXT, "username": st.none() | TEXT,
        "roles": st.lists(TEXT, max_size=3), "ip": st.none() | TEXT,
        "user_agent": st.none() | TEXT, "request_id": st.none() | TEXT, "action": TEXT,
        "entity": st.none() | TEXT, "record_id": st.none() | TEXT, "diff": values,
        "prev_hash": TEXT,
    })


def finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(map(finite, value.values()))
    return all(map(finite, value)) if isinstance(value, list) else True


def stored(value: Any, style: str) -> str:
    """How the value may sit in a JSON column or a file: piccolo writes json.dumps
    (`, ` and `: `), PostgreSQL's json keeps the text as given, an export sorts keys."""
    return {
        "piccolo": lambda: json.dumps(value, default=str),
        "ascii": lambda: json.dumps(value, ensure_ascii=True, sort_keys=True, indent=1),
        "compact": lambda: json.dumps(value, ensure_ascii=False, separators=(",", ":")),
    }[style]()


@PROPERTY
@given(entry(JSON_NO_FLOAT))
def test_encoder_gives_the_canonical_bytes(e: dict[str, Any]) -> None:
    assert encode_canonical(e) == canonical(e)


@PROPERTY
@given(JSON_ANY, st.sampled_from(["piccolo", "ascii", "compact"]))
def test_stored_json_decodes_to_the_same_canonical_bytes(value: Any, style: str) -> None:
    """What the live check and the export verifier do to a stored value, old and new."""
    text = stored(value, style)
    old = canonical({"diff": json.loads(text)})
    if not finite(value):  # NaN / Infinity are not JSON: msgspec refuses, the old way runs
        with pytest.raises(FAST_ERRORS):
            decode(text)
        return
    assert encode_canonical({"diff": decode(text)}) == old
    assert encode_canonical({"diff": decode(text.encode())}) == old


@PROPERTY
@given(FLOATS)
def test_float_literals_keep_the_json_spelling(value: float) -> None:
    for text in (repr(value), f"{value:.17e}", f"{value:.3E}"):
        try:
            expected = canonical({"x": json.loads(text)})
        except ValueError:  # nan / inf spelled as Python does: not JSON either way
            continue
        assert encode_canonical({"x": decode(text)}) == expected


@PROPERTY
@given(entry(JSON_ANY), st.datetimes(datetime(1970, 1, 2), datetime(9999, 12, 30),
                                      timezones=st.sampled_from(
    [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3, minutes=-30))])),
    st.sampled_from(["piccolo", "ascii", "compact"]))
def test_a_stored_row_hashes_as_before(e: dict[str, Any], at: datetime, style: str) -> None:
    """The live check's row (a tuple of the selected columns, JSON as text) gives the bytes
    `canonical(hashed_fields(row))` gives for the row piccolo loads; NaN included."""
    tenant = uuid.UUID(e["tenant_id"])
    roles, diff = stored(e["roles"], style), stored(e["diff"], style)
    loaded = {**e, "tenant_id": tenant, "at": at, "roles": json.loads(roles),
              "diff": json.loads(diff), "hash": "h"}
    row = (e["seq"], e["prev_hash"], "h", at, e["user_id"], e["username"], roles, e["ip"],
           e["user_agent"], e["request_id"], e["action"], e["entity"], e["record_id"], diff)
    assert _row_body(str(tenant))(row) == canonical(hashed_fields(loaded))


@PROPERTY
@given(entry(JSON_ANY))
def test_an_export_line_verifies_as_before(e: dict[str, Any]) -> None:
    """A line of entries.jsonl whose hash the old definition made is accepted, and one with
    any hashed value changed is not."""
    digest = chain_hash(e["prev_hash"], e)
    line = json.dumps({**e, "hash": digest}, ensure_ascii=False, sort_keys=True).encode()
    checker = ChainChecker(e["prev_hash"], e["seq"])
    assert _feed_line(checker, line) and checker.verdict((e["seq"], digest)).ok
    forged = json.dumps({**e, "hash": digest, "action": e["action"] + "x"},
                        ensure_ascii=False, sort_keys=True).encode()
    checker = ChainChecker(e["prev_hash"], e["seq"])
    assert not _feed_line(checker, forged)
    assert (checker.verdict(None).seq, checker.verdict(None).problem) == (e["seq"], "changed")


def test_what_neither_can_encode_fails_alike() -> None:
    """A lone surrogate (json reads it, UTF-8 cannot hold it) breaks both ways the same."""
    text = '{"name": ["\\ud800", null]}'
    with pytest.raises(UnicodeEncodeError):
        canonical({"diff": json.loads(text)})
    row = (1, "p", "h", None, None, None, "[]", None, None, None, "a", None, None, text)
    with pytest.raises(UnicodeEncodeError):
        _row_body(str(uuid.uuid4()))(row)


def test_no_float_goes_through_msgspec_spelling() -> None:
    assert encode_canonical(decode(b"[1e16,1e-07,1E400,-0.0,2.50]")) == \
        b"[1e+16,1e-07,Infinity,-0.0,2.5]" == canonical(json.loads("[1e16,1e-07,1E400,-0.0,2.50]"))
