"""Random secrets, their digests, and password hashing."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from functools import lru_cache

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Compared against when the account does not exist, so both failures take the same time.
    Made at the first login, not at import: a worker's start-up does not pay for a scrypt hash (P12)."""
    return generate_password_hash("qcflow-dummy-password", method="scrypt")


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random string with `nbytes` bytes of entropy."""
    return secrets.token_urlsafe(nbytes)


def digest(secret: str) -> str:
    """sha256 hex digest used to store tokens and session keys."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def derived_key(purpose: str) -> str:
    """A key of its own for each use of SECRET_KEY (CSRF, receipt codes, idempotency keys, login sources)."""
    return digest(f"{purpose}:{current_app.config['SECRET_KEY']}")


def keyed_hash(key: str, value: str) -> str:
    """HMAC-SHA256 of `value` under `key`: stored or compared in place of the value itself."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def password_matches(stored_hash: str | None, password: str) -> bool:
    if stored_hash is None:
        check_password_hash(_dummy_hash(), password)
        return False
    return check_password_hash(stored_hash, password)


def sessionless_token(key: str, now_ts: float | None = None) -> str:
    """A CSRF token that needs no session (for pages that must set no cookie): time, nonce, MAC."""
    stamp = str(int(now_ts if now_ts is not None else time.time()))
    nonce = secrets.token_urlsafe(12)
    mac = hmac.new(key.encode(), f"{stamp}.{nonce}".encode(), hashlib.sha256).hexdigest()
    return f"{stamp}.{nonce}.{mac}"


def sessionless_token_valid(key: str, token: str | None, max_age: int, now_ts: float | None = None) -> bool:
    try:
        stamp, nonce, mac = (token or "").split(".")
        age = (now_ts if now_ts is not None else time.time()) - int(stamp)
    except ValueError:
        return False
    expected = hmac.new(key.encode(), f"{stamp}.{nonce}".encode(), hashlib.sha256).hexdigest()
    return 0 <= age <= max_age and hmac.compare_digest(mac, expected)


class MemoryRateLimiter:
    """Counts events per key (a receipt-code prefix, a client address) without keeping the key.

    The key is hashed with a random secret that lives only in memory and changes every day;
    counts are kept in memory for one window. Nothing reaches the database or logs. At most
    `max_slots` keys are counted at once (a flood of distinct keys cannot exhaust memory; beyond
    that a key is not counted). Per process: with N workers the effective limit is at most N times
    the setting.
    """

    def __init__(self, window_seconds: int = 600, max_slots: int = 100_000):
        self.window = window_seconds
        self.max_slots = max_slots
        self._lock = threading.Lock()
        self._day = None
        self._key = b""
        self._counts: dict[str, tuple[int, float]] = {}

    def _slot(self, key: str, now_ts: float) -> str:
        day = time.strftime("%Y%m%d", time.gmtime(now_ts))
        if day != self._day:
            self._day, self._key, self._counts = day, secrets.token_bytes(32), {}
        return hmac.new(self._key, key.encode(), hashlib.sha256).hexdigest()

    def _current(self, slot: str, now_ts: float) -> tuple[int, float]:
        count, started = self._counts.get(slot, (0, now_ts))
        return (0, now_ts) if now_ts - started >= self.window else (count, started)

    def exceeded(self, key: str, limit: int, now_ts: float) -> bool:
        """Whether `key` has used up its `limit` within the window (counts nothing)."""
        with self._lock:
            return self._current(self._slot(key, now_ts), now_ts)[0] >= limit

    def add(self, key: str, now_ts: float) -> None:
        """Count one event for `key`."""
        with self._lock:
            slot = self._slot(key, now_ts)
            if slot not in self._counts and len(self._counts) >= self.max_slots:
                self._counts = {k: v for k, v in self._counts.items() if now_ts - v[1] < self.window}
                if len(self._counts) >= self.max_slots:
                    return
            count, started = self._current(slot, now_ts)
            self._counts[slot] = (count + 1, started)
