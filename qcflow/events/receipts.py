"""Receipt codes as the pages and the API take them: the report of a code, and the limit on wrong codes."""
from __future__ import annotations

import time

from flask import current_app
from flask_babel import gettext as _

from qcflow.core.errors import NotFound, TooManyRequests
from qcflow.core.security import MemoryRateLimiter
from qcflow.core.web import known_client_address
from qcflow.events import services

#: Wrong receipt codes counted per code prefix (whoever sends them) and per known client address.
receipt_guesses = MemoryRateLimiter()
receipt_clients = MemoryRateLimiter()
#: Symbols of a receipt code that name its guessing bucket: 31**4 buckets, so a flood of wrong codes
#: fills the bucket of a given reporter's code only by chance (about once in 900,000 codes per slot).
RECEIPT_PREFIX_SYMBOLS = 4


def receipt_prefix(code: str) -> str:
    return services.normalise_receipt_code(code).replace("-", "")[:RECEIPT_PREFIX_SYMBOLS]


def refuse_when_guessing(code: str) -> None:
    """After a wrong code: 429 once its prefix, or its known client, has had too many wrong codes.

    A right code is always answered: guessing one is made infeasible by its 129 bits, not by this
    limit, which only turns a flood of wrong codes into cheap refusals. Behind the shipped nginx
    every client is the proxy, so there is no per-address lock: one client's flood, or a reporter
    mistyping their own code, never keeps a reporter with the right code out.
    """
    config, at = current_app.config, time.time()
    address = known_client_address()
    if receipt_guesses.exceeded(receipt_prefix(code), config["RECEIPT_WRONG_CODES_PER_PREFIX_10_MIN"], at) or (
            address is not None and receipt_clients.exceeded(address, config["RECEIPT_LOOKUPS_PER_10_MIN"], at)):
        raise TooManyRequests(_("Too many wrong receipt codes. Wait ten minutes and try again."),
                              headers={"Retry-After": str(receipt_guesses.window)})
    receipt_guesses.add(receipt_prefix(code), at)
    if address is not None:
        receipt_clients.add(address, at)


def find_receipt(code: str, reply: str | None = None, *, at=None, seen: int | None = None):
    """The report of a receipt code (with the reporter's reply added); wrong codes within their limits."""
    try:
        if reply:
            return services.reply_by_receipt(code, reply, now=at, seen=seen)
        return services.find_by_receipt(code)
    except NotFound:
        refuse_when_guessing(code)
        raise
