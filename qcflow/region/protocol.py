"""What a hospital and its centre agree on (docs/region.md, The protocol): Ed25519 keys, the signed envelope of a
submission, the signed request of a hospital asking where it stands, periods, and the check of a month's values.

Both sides import this module; neither side's services are imported by the other.

A submission is one HTTP POST whose body is the canonical JSON envelope

    {"schema": "qcflow.region-submission/1", "hospital": CODE, "kind": KIND, "period": PERIOD,
     "version": N, "signed_at": ISO-8601 UTC, "digest": SHA-256 of the document, "document": {...}}

with the headers `X-Qcflow-Hospital: CODE` and `X-Qcflow-Signature: ed25519=<base64 signature of the body>`.
(hospital, kind, period, version) identifies it; the document's digest tells a retry of the same version from a
different document sent under the same version. The centre answers with a JSON receipt signed the same way by
the centre's key.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask_babel import gettext as _

from qcflow.core.canonical import canonical as canonical_text
from qcflow.core.errors import Unprocessable
from qcflow.core.periods import add_months

SCHEMA = "qcflow.region-submission/1"
RECEIPT_SCHEMA = "qcflow.region-receipt/1"
#: Schema of a month's document (kind "month"); the forms' documents are their JSON twins
#: (qcflow.indicator-form/1, indicators/forms.py).
MONTH_SCHEMA = "qcflow.region-month/1"
HEADER_HOSPITAL = "X-Qcflow-Hospital"
HEADER_SIGNATURE = "X-Qcflow-Signature"
#: Signed requests (a hospital asking the centre where it stands): the signing time, in the headers.
HEADER_SIGNED_AT = "X-Qcflow-Signed-At"
SIGNATURE_PREFIX = "ed25519="
#: A signature older than this, or this far in the future, is refused (a replay, or a clock that is wrong).
MAX_AGE = timedelta(hours=24)
MAX_AHEAD = timedelta(minutes=5)
#: The largest envelope the centre reads (a year's quarterly form is about 200 kB).
MAX_BODY_BYTES = 2 * 1024 * 1024

#: Years 2000–2999 only: a period before 2000 is never sent, and year 0 is no date at all.
_PERIOD_PATTERNS = {
    "month": re.compile(r"^(2\d{3})-(0[1-9]|1[0-2])$"),
    "annual_form": re.compile(r"^(2\d{3})$"),
    "quarterly_form": re.compile(r"^(2\d{3})-Q([1-4])$"),
}
#: A hospital's code: letters, digits and _ . -, at most 40, starting with a letter or a digit.
HOSPITAL_CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


class ProtocolError(ValueError):
    """A malformed envelope or document; `errors` maps a field (or "values[i].field") to its messages."""

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


# Keys -----------------------------------------------------------------------------------------------------------

def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_private_key(path: str, key: Ed25519PrivateKey) -> None:
    """Write the key readable by its owner only; never overwrites an existing key (refuses instead)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_key_pem(key))


def load_private_key(path: str) -> Ed25519PrivateKey:
    with open(path, "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key as it is handed over: base64 of its 32 raw bytes (44 characters)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


#: The field's prime and the y coordinates of the points of small order (1, 2, 4 and 8): a public key that is one of
#: them verifies a signature made without any private key (libsodium refuses them the same way).
_P = 2 ** 255 - 19
_SMALL_ORDER_Y = frozenset({0, 1, _P - 1,
                            0x05fc536d880238b13933c6d305acdfd5f098eff289f4c345b027b2c28f95e826,
                            0x7a03ac9277fdc74ec6cc392cfa53202a0f67100d760b3cba4fd84d3d706a17c7})


def load_public_key(text: str) -> Ed25519PublicKey:
    """A public key from its base64 text; ValueError when it is not 32 bytes of base64, is not in its one
    canonical form, or is a point of small order (a key anyone could sign for)."""
    try:
        raw = base64.b64decode((text or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= _P:
        raise ValueError("not the canonical encoding of a point")
    if y in _SMALL_ORDER_Y:
        raise ValueError("a point of small order is no key")
    return Ed25519PublicKey.from_public_bytes(raw)


def fingerprint(public_key: str | None) -> str | None:
    """A short, stable name of a public key, the same at the hospital (`region public-key`) and at the centre (its
    pages and audit trail): SHA-256 of its text, first 16 hex digits."""
    if not public_key:
        return None
    return sha256(public_key.strip().encode())[:16]


def is_public_key(text: str) -> bool:
    try:
        load_public_key(text)
    except ValueError:
        return False
    return True


def sign(key: Ed25519PrivateKey, body: bytes) -> str:
    """The signature header's value for `body`."""
    return SIGNATURE_PREFIX + base64.b64encode(key.sign(body)).decode("ascii")


def verify(public_key: str, body: bytes, header: str | None) -> bool:
    """Whether `header` (X-Qcflow-Signature) is the signature of `body` by the holder of `public_key`."""
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    try:
        signature = base64.b64decode(header[len(SIGNATURE_PREFIX):], validate=True)
        load_public_key(public_key).verify(signature, body)
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


# Canonical JSON, envelopes, signed requests ------------------------------------------------------------------

def canonical(data) -> bytes:
    return canonical_text(data).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(document: dict) -> str:
    return sha256(canonical(document))


def binding_error(answer: dict, status: int, request_digest: str) -> str | None:
    """Why a signed answer does not belong to the request it came back to (its status or the request's digest
    differ: an old answer replayed on the way), or None."""
    if answer.get("status") != status:
        return f"unbound: the signed status {answer.get('status')!r} is not the HTTP status {status}"
    if answer.get("request_digest") != request_digest:
        return "unbound: the answer was signed for another request"
    return None


def utc_text(at: datetime) -> str:
    return at.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def envelope(hospital: str, kind: str, period: str, version: int, document: dict, signed_at: datetime) -> bytes:
    return canonical({"schema": SCHEMA, "hospital": hospital, "kind": kind, "period": period, "version": version,
                      "signed_at": utc_text(signed_at), "digest": digest(document), "document": document})


def request_text(method: str, path_and_query: str, signed_at: str) -> bytes:
    """What a signed request's signature covers: method, path with its query string, and signing time."""
    return f"{method.upper()}\n{path_and_query}\n{signed_at}".encode()


def parse_time(text) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def time_error(signed_at: datetime | None, now: datetime) -> str | None:
    """Why a signing time is refused (missing, too old: a replay, too far ahead: a wrong clock), or None."""
    if signed_at is None:
        return _("The signing time is missing or not an ISO 8601 time with its zone.")
    if signed_at < now - MAX_AGE:
        return _("Signed more than %(hours)d hours ago: a replayed or stale message. Send it again (it is signed "
                 "anew at each attempt).", hours=int(MAX_AGE.total_seconds() // 3600))
    if signed_at > now + MAX_AHEAD:
        return _("Signed in the future: check the sending server's clock.")
    return None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is too large")
    return number


@dataclass(frozen=True)
class Envelope:
    hospital: str
    kind: str
    period: str
    version: int
    signed_at: datetime
    digest: str
    document: dict


def parse_envelope(body: bytes) -> Envelope:
    """The envelope's fields, checked for shape (not for signature, hospital or values); ProtocolError if not."""
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ProtocolError(_("The body is not JSON (UTF-8).")) from None
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(_("The body is not JSON (UTF-8) with finite numbers only.")) from None
    if not isinstance(data, dict):
        raise ProtocolError(_("The body is not a JSON object."))
    errors: dict[str, list[str]] = {}
    if data.get("schema") != SCHEMA:
        errors["schema"] = [_("Expected %(schema)s.", schema=SCHEMA)]
    hospital = data.get("hospital")
    if not isinstance(hospital, str) or not HOSPITAL_CODE_PATTERN.match(hospital):
        errors["hospital"] = [_("The hospital's code is missing or malformed.")]
    kind = data.get("kind")
    if kind not in _PERIOD_PATTERNS:
        errors["kind"] = [_("One of: %(kinds)s.", kinds=", ".join(_PERIOD_PATTERNS))]
    period = data.get("period")
    if kind in _PERIOD_PATTERNS and (not isinstance(period, str) or not _PERIOD_PATTERNS[kind].match(period)):
        errors["period"] = [_("Malformed period: a month is 2026-03, a year 2026, a quarter 2026-Q1.")]
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 10 ** 6:
        errors["version"] = [_("The version is a whole number from 1.")]
    signed_at = parse_time(data.get("signed_at"))
    if signed_at is None:
        errors["signed_at"] = [_("The signing time is missing or not an ISO 8601 time with its zone.")]
    document = data.get("document")
    if not isinstance(document, dict):
        errors["document"] = [_("The document is missing.")]
    elif data.get("digest") != digest(document):
        errors["digest"] = [_("The digest does not match the document.")]
    if errors:
        raise ProtocolError(_("The submission is malformed: nothing was stored."), errors)
    return Envelope(hospital, kind, period, version, signed_at, data["digest"], document)


# Periods --------------------------------------------------------------------------------------------------------

def period_months(kind: str, period: str) -> tuple[date, date]:
    """First and last month of a well-formed period."""
    match = _PERIOD_PATTERNS[kind].match(period)
    year = int(match.group(1))
    if kind == "month":
        first = date(year, int(match.group(2)), 1)
        return first, first
    if kind == "annual_form":
        return date(year, 1, 1), date(year, 12, 1)
    first = date(year, 3 * int(match.group(2)) - 2, 1)
    return first, add_months(first, 2)


def period_text(kind: str, first_month: date) -> str:
    if kind == "month":
        return f"{first_month:%Y-%m}"
    if kind == "annual_form":
        return f"{first_month:%Y}"
    return f"{first_month:%Y}-Q{(first_month.month - 1) // 3 + 1}"


def period_error(kind: str, period: str, today: date) -> str | None:
    """A period is sent once it has ended (its last month's last day has passed) and not before 2000."""
    first, last = period_months(kind, period)
    if first.year < 2000:
        return _("Periods before 2000 are not received.")
    if add_months(last, 1) > today:
        return _("The period %(period)s has not ended yet: send it from %(day)s on.", period=period,
                 day=add_months(last, 1).isoformat())
    return None


def last_half_year(today: date) -> tuple[date, date]:
    """The last complete half-year before `today` (January–June or July–December), as first months: the default
    period of the centre's comparisons and of a hospital's standing."""
    if today.month >= 7:
        return date(today.year, 1, 1), date(today.year, 6, 1)
    return date(today.year - 1, 7, 1), date(today.year - 1, 12, 1)


#: The periods a hospital may ask its standing for: one whole quarter (its first and last months).
QUARTER_STARTS, QUARTER_ENDS = (1, 4, 7, 10), (3, 6, 9, 12)


def quarter_name(first: date) -> str:
    return period_text("quarterly_form", first)


def last_quarter(today: date) -> date:
    """The first month of the last quarter that has ended before `today`: the default period of a standing."""
    return add_months(date(today.year, (today.month - 1) // 3 * 3 + 1, 1), -3)


def check_quarter(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """A standing covers exactly one quarter that has ended (its first and last months; by default the last one
    ended). Quarters do not overlap, so two answers never subtract to a shorter period's hidden figures (a half-year
    less one of its quarters would give the other), and an ended quarter's figures no longer grow month by month.
    422 naming `from` or `to`, with the quarters that may be asked, otherwise."""
    latest = last_quarter(today)
    start = start or (add_months(end, -2) if end else latest)
    end = end or add_months(start, 2)
    errors = {}
    if start.month not in QUARTER_STARTS:
        errors["from"] = [_("Start with the first month of a quarter (January, April, July or October).")]
    elif end != add_months(start, 2):
        errors["to"] = [_("End with the last month of the same quarter (%(month)s): one quarter is compared at a "
                          "time.", month=f"{add_months(start, 2):%Y-%m}")]
    elif start > latest:
        errors["to"] = [_("%(quarter)s has not ended yet.", quarter=quarter_name(start))]
    elif start.year < 2000:
        errors["from"] = [_("Periods before 2000 are not received.")]
    if errors:
        raise Unprocessable(_("Choose one quarter that has ended: %(quarter)s (%(first)s to %(last)s) or an earlier "
                              "one.", quarter=quarter_name(latest), first=f"{latest:%Y-%m}",
                              last=f"{add_months(latest, 2):%Y-%m}"), errors=errors)
    return start, end


# A month's document ---------------------------------------------------------------------------------------------

#: The largest value a month's mean time, ratio or count can plausibly take. The hospital's own entry allows up to a
#: billion (a typing error's bound); what reaches the centre is pooled with every other hospital's, so one absurd
#: value would move the region's: a mean time over a week, a ratio (CMI) over 100 or a count over a million is
#: refused with the indicator named.
PLAUSIBLE_MAX = {"minutes": 7 * 24 * 60, "hours": 7 * 24, "days": 366, "ratio": 100, "count": 10 ** 6}
#: The same for a rate whose numerator is not a subset of its denominator (shares, percent and permille, are bounded
#: by numerator ≤ denominator already): more adverse events reported than patients discharged in a month (over 100
#: per 100 discharges, where real hospitals report a few) is a broken count, not a hospital's figure.
PLAUSIBLE_RATE_MAX = {"per100": 100}

def month_document(month: date, plan: str, values: list[dict]) -> dict:
    """values: [{"code", "unit", "numerator", "denominator", "value"}], sorted by code by the caller or here."""
    return {"schema": MONTH_SCHEMA, "month": f"{month:%Y-%m}", "plan": plan,
            "values": sorted(values, key=lambda v: v["code"])}


def month_value_errors(document: dict, units: dict[str, str]) -> tuple[list[dict], dict]:
    """Check a month's values against the catalogue's units (`units`: code → unit). Returns the values to store
    ({"code", "numerator", "denominator", "value"}, the value of a rate computed from its parts) and the errors by
    "values[i].field" (a message a hospital can act on, naming the indicator)."""
    from qcflow.indicators.reporting import RATE_UNITS, SHARE_UNITS, check_parts, value_from_parts
    from qcflow.indicators.survival import SURVIVAL_CODES

    errors: dict[str, list[str]] = {}
    if document.get("schema") != MONTH_SCHEMA:
        errors["document.schema"] = [_("Expected %(schema)s.", schema=MONTH_SCHEMA)]
    values = document.get("values")
    if not isinstance(values, list):
        errors["document.values"] = [_("The month's values are missing (a list).")]
        return [], errors
    stored, seen = [], set()
    for index, item in enumerate(values):
        where = f"values[{index}]"
        if not isinstance(item, dict):
            errors[where] = [_("Each value is an object.")]
            continue
        code = item.get("code")
        if not isinstance(code, str) or code not in units:
            errors[f"{where}.code"] = [_("Unknown indicator %(code)s: send only the catalogue's indicators.",
                                         code=str(code)[:60])]
            continue
        if code in seen:
            errors[f"{where}.code"] = [_("%(code)s is sent twice in this month.", code=code)]
            continue
        seen.add(code)
        unit = units[code]
        if item.get("unit") != unit:
            errors[f"{where}.unit"] = [_("%(code)s is counted in %(unit)s, not %(sent)s.", code=code, unit=unit,
                                         sent=str(item.get("unit"))[:20])]
            continue
        numerator, denominator, value = item.get("numerator"), item.get("denominator"), item.get("value")
        found: dict[str, list[str]] = {}
        if unit in RATE_UNITS and (numerator is not None or denominator is not None):
            check_parts(unit, numerator, denominator, None, found)
            if not found:
                value = value_from_parts(unit, numerator, denominator)
                sent = item.get("value")
                if sent is not None and (not isinstance(sent, (int, float)) or isinstance(sent, bool)
                                         or not math.isclose(sent, value, rel_tol=1e-6, abs_tol=1e-6)):
                    found["value"] = [_("The value does not match its numerator and denominator.")]
                elif value > PLAUSIBLE_RATE_MAX.get(unit, value):
                    found["numerator"] = [_("The value %(value)s is out of range (at most %(high)s): check the "
                                            "numerator (%(n)d) and the denominator (%(d)d).", value=f"{value:.4g}",
                                            high=PLAUSIBLE_RATE_MAX[unit], n=numerator, d=denominator)]
        elif unit in RATE_UNITS and code in SURVIVAL_CODES:
            # An estimate without parts (a survival rate): only its range.
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                found["value"] = [_("Enter a number.")]
            elif not 0 <= value <= 100:
                found["value"] = [_("Out of range (%(low)s to %(high)s).", low=0, high=100)]
        elif unit in RATE_UNITS:
            found["numerator"] = [_("A rate is sent with its numerator and denominator.")]
        else:
            check_parts(unit, numerator, denominator, value, found)
            if not found and value > PLAUSIBLE_MAX.get(unit, value):
                found["value"] = [_("Out of range (%(low)s to %(high)s).", low=0, high=f"{PLAUSIBLE_MAX[unit]:g}")]
        if unit in SHARE_UNITS and not found and numerator is None and value is None:
            found["value"] = [_("Enter the value.")]
        for field, messages in found.items():
            errors[f"{where}.{field}"] = [f"{code}: {message}" for message in messages]
        if not found:
            stored.append({"code": code, "numerator": numerator, "denominator": denominator,
                           "value": None if value is None else float(value)})
    return stored, errors
