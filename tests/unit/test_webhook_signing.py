"""Webhook signatures: the header's format, a fixed vector, the verification helper's round
trip and refusals, and the receiver example of docs/integrations.md (standard library only)
accepting what xindai signs. Also the pure checks on URLs, event types and addresses."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from pathlib import Path

import pytest

from core import webhooks
from core.errors import ValidationFailed

SECRET = "whsec_3q2-7wEXAMPLEonlyNotARealSecret0000000000"
BODY = b'{"id":"0b7c","type":"customer.created","data":{"id":"42"}}'
DOCS = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def test_the_header_format_and_a_fixed_vector() -> None:
    header = webhooks.signature_header(SECRET, BODY, timestamp=1_700_000_000)
    assert re.fullmatch(r"t=1700000000,v1=[0-9a-f]{64}", header)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert re.fullmatch(r"t=\d{10},v1=[0-9a-f]{64}", webhooks.signature_header(SECRET, BODY))


def test_verification_round_trip_and_refusals() -> None:
    now = 1_700_000_100
    header = webhooks.signature_header(SECRET, BODY, timestamp=now - 10)
    assert webhooks.verify_signature(SECRET, header, BODY, now=now)
    assert not webhooks.verify_signature(SECRET, header, BODY + b" ", now=now)  # body changed
    assert not webhooks.verify_signature(SECRET + "x", header, BODY, now=now)  # other secret
    assert not webhooks.verify_signature(SECRET, header, BODY, now=now + 400)  # too old: replay
    assert not webhooks.verify_signature(SECRET, header, BODY, now=now - 400)  # from the future
    forged = header.replace(f"t={now - 10}", f"t={now}")  # a fresher timestamp, same MAC
    assert not webhooks.verify_signature(SECRET, forged, BODY, now=now)
    for bad in ("", "t=abc,v1=00", f"t={now}", "v1=" + "0" * 64, "garbage"):
        assert not webhooks.verify_signature(SECRET, bad, BODY, now=now)
    # during a secret change a header may carry several v1 values; one must match
    other = webhooks.signature(SECRET + "old", now, BODY)
    both = f"t={now},v1={other},v1={webhooks.signature(SECRET, now, BODY)}"
    assert webhooks.verify_signature(SECRET, both, BODY, now=now)


def test_the_envelope_is_compact_utf8_json() -> None:
    body = webhooks.envelope("id-1", "customer.created", "2026-11-20T02:00:00Z", "demo",
                             {"entity": "customer", "id": "42"})
    assert body == (b'{"id":"id-1","type":"customer.created","created_at":"2026-11-20T02:00:00Z",'
                    b'"tenant":"demo","data":{"entity":"customer","id":"42"}}')
    assert "晋中".encode() in webhooks.envelope("i", "e", "t", "s", {"n": "晋中"})


def test_the_documented_receiver_example_verifies_xindai_signatures() -> None:
    text = DOCS.read_text("utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    [example] = [b for b in blocks if "def verify_signature(" in b]
    assert "import core" not in example and "xindai" not in example.split("def ")[0]
    namespace: dict[str, object] = {"__name__": "receiver_example"}
    exec(compile(example, str(DOCS), "exec"), namespace)  # noqa: S102 - our own docs
    verify = namespace["verify_signature"]
    header = webhooks.signature_header(SECRET, BODY)
    assert verify(SECRET, header, BODY) is True  # type: ignore[operator]
    assert verify(SECRET, header, BODY[:-1]) is False  # type: ignore[operator]
    assert verify("whsec_other", header, BODY) is False  # type: ignore[operator]
    old = webhooks.signature_header(SECRET, BODY, timestamp=1_600_000_000)
    assert verify(SECRET, old, BODY) is False  # type: ignore[operator]


@pytest.mark.parametrize("events,expected", [
    (["customer.created", " customer.created "], ["customer.created"]),
    (["customer.*", "*"], ["*"]),
    (["loan.disbursed", "example.ping"], ["loan.disbursed", "example.ping"]),
])
def test_event_types_are_cleaned(events: list[str], expected: list[str]) -> None:
    assert webhooks.check_events(events) == expected


@pytest.mark.parametrize("events", [[], [""], ["Customer.Created"], ["customer created"],
                                    ["customer..created"], ["*.created"], ["x" * 101],
                                    [f"e{n}.x" for n in range(51)]])
def test_bad_event_types_are_refused(events: list[str]) -> None:
    with pytest.raises(ValidationFailed):
        webhooks.check_events(events)


def test_matching() -> None:
    assert webhooks.matches(["*"], "anything.at_all")
    assert webhooks.matches(["customer.*"], "customer.deleted")
    assert not webhooks.matches(["customer.*"], "customers.deleted")
    assert webhooks.matches(["customer.created"], "customer.created")
    assert not webhooks.matches(["customer.created"], "customer.updated")


def test_urls() -> None:
    assert webhooks.check_url(" https://erp.example.com/x?a=1 ") == "https://erp.example.com/x?a=1"
    assert webhooks.check_url("http://10.0.0.8:8080/hook") == "http://10.0.0.8:8080/hook"
    for bad in ("", "erp.example.com", "ftp://a.b/", "https://u:p@a.b/", "javascript:alert(1)",
                "http:///nohost", "https://a.b/" + "x" * 500):
        with pytest.raises(ValidationFailed):
            webhooks.check_url(bad)


@pytest.mark.parametrize("address,public", [
    ("8.8.8.8", True), ("2001:4860:4860::8888", True), ("127.0.0.1", False), ("::1", False),
    ("10.0.0.1", False), ("172.16.5.4", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("fe80::1", False), ("fc00::1", False), ("100.64.0.1", False),
    ("0.0.0.0", False), ("::ffff:127.0.0.1", False), ("::ffff:8.8.8.8", True),
    ("224.0.0.1", False), ("255.255.255.255", False),
])
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert webhooks.is_public(ipaddress.ip_address(address)) is public
