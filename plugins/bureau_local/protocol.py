"""The wire protocol of the local credit bureau (征信) — modelled on the Chinese bureau and
credit-data APIs (百行征信, 朴道征信 style): JSON over HTTP(S), an app key and an
HMAC-SHA256 signature over the method, path, timestamp, nonce and body digest.

    POST /v1/credit-reports
    X-Bureau-AppKey:    the lender's app key
    X-Bureau-Timestamp: milliseconds since the epoch (±300 s of the server's clock)
    X-Bureau-Nonce:     16–64 hex characters, never reused within 10 minutes
    X-Bureau-Signature: hex HMAC-SHA256(secret, "POST\n/v1/credit-reports\n<ts>\n<nonce>\n
                        <hex SHA-256 of the body>")
    {"name": "...", "id_number": "18-character resident ID", "consent_ref": "...",
     "reason": "loan_approval", "request_id": "..."}

    200 {"code": "0000", "message": "成功", "request_id": "...",
         "data": {"report_no": "...", "generated_at": "...", "summary": {...},
                  "report": {"format": "pdf", "content": "<base64>"}}}
    4xx {"code": "<error code>", "message": "...", "request_id": "..."}

Error codes: 1001 signature headers missing, 1002 unknown app key, 1003 signature does not
match, 1004 timestamp out of window, 1005 nonce reused, 2000 body is not a JSON object,
2001 consent reference missing, 2002 resident ID invalid, 2003 name missing, 2004 reason
not allowed. The client side lives in the lender's system (plugins.origination.bureau_client);
the two sides share this text, not code, as two companies would.
"""

from __future__ import annotations

import hashlib
import hmac

PATH = "/v1/credit-reports"
WINDOW_MS = 300_000
NONCE_TTL_S = 600
REASONS = ("loan_approval", "post_loan_management")


def canonical(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The string the signature covers."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{digest}".encode()


def signature(secret: str, method: str, path: str, timestamp: str, nonce: str,
              body: bytes) -> str:
    return hmac.new(secret.encode(), canonical(method, path, timestamp, nonce, body),
                    hashlib.sha256).hexdigest()
