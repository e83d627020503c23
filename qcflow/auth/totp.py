"""TOTP (RFC 6238 over RFC 4226 HOTP): 30-second steps, 6 digits, HMAC-SHA-1, ±1 step accepted.

The one place that does the arithmetic; standard library only. What is stored and when a code
counts (enrolment, replay) lives in qcflow.auth.services.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from datetime import datetime
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6
#: Steps accepted either side of the server's: a phone clock up to 30 s off, or a code typed late.
WINDOW = 1
#: 160-bit secrets, the HMAC-SHA-1 key length RFC 4226 recommends; 32 base32 characters.
SECRET_BYTES = 20


def new_secret() -> str:
    """A random base32 secret (upper case, no padding)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def _key(secret: str) -> bytes:
    text = "".join(secret.split()).upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def hotp(key: bytes, counter: int, digits: int = DIGITS, algorithm=hashlib.sha1) -> str:
    """RFC 4226 HOTP value of `counter` with dynamic truncation."""
    mac = hmac.new(key, struct.pack(">Q", counter), algorithm).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def step_at(at: datetime) -> int:
    """The 30-second step (RFC 6238 T, with T0 = 0) an instant falls in."""
    return int(at.timestamp()) // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    """The 6-digit code of a base32 secret for a step."""
    return hotp(_key(secret), step)


def matching_step(secret: str, code: str, at: datetime) -> int | None:
    """The step within ±WINDOW of `at` whose code is `code` (spaces ignored), or None."""
    code = "".join((code or "").split())
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    now_step, found = step_at(at), None
    for step in range(now_step - WINDOW, now_step + WINDOW + 1):
        # Every candidate is compared in constant time, so timing tells nothing about which matched.
        if hmac.compare_digest(code_at(secret, step), code) and found is None:
            found = step
    return found


def grouped(secret: str) -> str:
    """The secret in groups of four characters, for typing it into an app by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI that authenticator apps read from the QR code."""
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS,
                       "period": STEP_SECONDS}, quote_via=quote)
    return f"otpauth://totp/{label}?{query}"
