"""Remove personal data from free text before it is shown outside the quality office.

What is replaced, by a placeholder in brackets:

- 18-character resident ID numbers (身份证号) whose ISO 7064 MOD 11-2 check character is right
  → ``[身份证号]``. An 18-digit run with a wrong check character is some other number and stays.
  Old 15-digit IDs have no check digit and cannot be told from other numbers, so they stay too.
- Mainland mobile numbers, ``1[3-9]`` and 9 more digits, optionally written 3-4-4 with spaces or
  hyphens and with a +86/86 prefix, not part of a longer digit run → ``[手机号]``.
- The value after a label 住院号, 病案号, 门诊号, 病历号, 床号, ID号 (each optionally with 码) or MRN
  → ``住院号：[编号]``; after 身份证/身份证号/身份证号码 → ``身份证号：[身份证号]``, whatever its checksum.
  A value is letters, digits and hyphens with at least one digit.
- Bed numbers written ``12床``, ``加3床``, ``3 床``, ``12号床`` or in Chinese numerals (``加三床``)
  → ``[床号]``.
- Landline numbers with an area code, written with a hyphen or a space after it or the area code in brackets
  (``021-64041990``, ``（0755）8123 4567``, ``0851 5123456``) → ``[电话]``. Without a separator an 11- or 12-digit
  run starting with 0 could be anything, and stays.
- A case's own data (`Own`, read by `own_data` in one place), looked for as written without a label: the name a
  reporter left → ``[姓名]``; the patient's record number (and a lesson's case reference) → ``[编号]``; the phone
  a reporter left → ``[电话]``, its digits with any spacing, brackets or hyphens, or without its area code.
- The caller's names (staff, patients) of 2 characters or more → ``[姓名]``, longest first. A
  name with Latin letters matches whole words only, ignoring case and the spacing between words;
  other names match anywhere, also with a space, a hyphen, a dot or a combining mark between
  characters (forms pad 张　三; a name can be split to slip past a filter).

Invisible characters (zero-width spaces and joiners, soft hyphens, byte-order marks) are removed
first, and any space (no-break and ideographic ones too) or dash may separate a mobile number's
groups: neither hides a number or a name.

In numbers and identifiers, full-width digits and letters count like ASCII ones. Replacing a value
can change the context of its neighbour (an ID number glued to a mobile number), so the
replacements are repeated until the text no longer changes: scrubbing twice gives the same text as
scrubbing once. Placeholders already in the text are never matched again, so this ends.

`personal_names` is the one list of names every caller passes, and `own_data` the one statement of a case's
own data: pages, API, PDFs, exports, notifications, the analysis, lessons.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from qcflow.auth.models import User
from qcflow.clinical.models import Patient, Staff
from qcflow.extensions import db

ID_NUMBER = "[身份证号]"
MOBILE = "[手机号]"
IDENTIFIER = "[编号]"
BED = "[床号]"
NAME = "[姓名]"
PHONE = "[电话]"
#: Everything the scrubber writes in place of what it removes.
PLACEHOLDERS = (ID_NUMBER, MOBILE, IDENTIFIER, BED, NAME, PHONE)

_D = "0-9０-９"
_L = "A-Za-zＡ-Ｚａ-ｚ"
_NUMERALS = "一二三四五六七八九十百零两〇"
#: What may stand between a name's characters, or a mobile number's groups.
_GAP = r"[\s\-‐‑‒–—·・.\u0300-\u036f]"
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_DASH = r"[\s\-‐‑–—]"
_FULL_WIDTH = str.maketrans("０１２３４５６７８９", "0123456789")

_RULES = rf"""
(?P<kept>\[(?:身份证号|手机号|电话|编号|床号|姓名)\])
|(?P<label>(?:住院号|病案号|门诊号|病历号|床号|(?i:ID)号)码?|(?i:MRN)|(?P<id_label>身份证(?:号码?)?))
 (?P<sep>\s*+(?:[:：\#＃]\s*+)?)
 (?P<value>(?=[{_L}-]*[{_D}])[{_L}{_D}][{_L}{_D}-]*)
|(?<![{_D}])(?P<id>[{_D}]{{17}}[{_D}XxＸｘ])(?![{_D}])
|(?<![{_D}])
 (?P<mobile>(?:[+＋]?[8８][6６][\s\-‐‑–—]?)?[1１][3-9３-９][{_D}][\s\-‐‑–—]?[{_D}]{{4}}[\s\-‐‑–—]?[{_D}]{{4}})
 (?![{_D}])
|(?<![{_D}])
 (?P<landline>(?:[(（][0０][1-9１-９][{_D}]{{1,2}}[)）]\s?|[0０][1-9１-９][{_D}]{{1,2}}{_DASH})
  [2-9２-９][{_D}]{{2,3}}{_DASH}?[{_D}]{{4}})
 (?![{_D}])
|(?<![{_D}{_NUMERALS}])(?P<bed>加?\s?(?:[{_D}]{{1,4}}|[{_NUMERALS}]{{1,5}})\s?号?\s?床)
"""
_BASE = re.compile(_RULES, re.VERBOSE)
_LATIN = re.compile("[A-Za-z]")
_SPACE = re.compile(r"\s+")


def _is_id_number(value: str) -> bool:
    total = sum(int(char) * weight for char, weight in zip(value[:17], _ID_WEIGHTS))
    check = "X" if value[17] in "XxＸｘ" else str(int(value[17]))
    return _ID_CHECK[total % 11] == check


def _replace(match: re.Match) -> str:
    if match.group("kept"):
        return match.group(0)
    if match.group("label"):
        placeholder = ID_NUMBER if match.group("id_label") else IDENTIFIER
        return match.group("label") + match.group("sep") + placeholder
    if match.group("id"):
        return ID_NUMBER if _is_id_number(match.group("id")) else match.group(0)
    if match.group("mobile"):
        return MOBILE
    if match.group("bed"):
        return BED
    if match.group("landline"):
        return PHONE
    if match.lastgroup == "own_identifier":
        return IDENTIFIER
    if match.lastgroup == "own_phone":
        return PHONE
    return NAME


def _compact(text: str) -> str:
    return re.sub(_GAP, "", text).casefold()


def _name_pattern(name: str) -> str:
    if _LATIN.search(name):
        words = r"\s+".join(re.escape(word) for word in name.split())
        return rf"(?<![A-Za-z])(?i:{words})(?![A-Za-z])"
    return f"{_GAP}{{0,2}}".join(re.escape(char) for char in _SPACE.sub("", name))


@dataclass(frozen=True)
class Own:
    """A case's own personal data, looked for in its text as written, without a label (`own_data` fills it)."""

    #: The name a reporter left → [姓名].
    names: tuple[str, ...] = ()
    #: The patient's record number, a lesson's case reference → [编号] (3 characters or more).
    identifiers: tuple[str, ...] = ()
    #: The phone a reporter left → [电话] (7 digits or more).
    phones: tuple[str, ...] = ()


def own_data(case, *, reference: bool = False) -> Own:
    """What of a case's own data its text must not show wherever the reporter and the patient are not shown:
    the name and phone the reporter left, the patient's record number, and with `reference` the case's reference
    (a lesson names no case). `case` is the case, or a row with these columns."""
    return Own(names=tuple(n for n in (case.contact_name,) if n),
               identifiers=tuple(v for v in (case.patient_mrn, case.reference if reference else None) if v),
               phones=tuple(p for p in (case.contact_phone,) if p))


def _phone_numbers(phone: str) -> list[str]:
    """The digits a phone may be written with: all of them, without the country code 86, without the area code."""
    digits = re.sub(r"\D", "", phone.translate(_FULL_WIDTH))
    numbers = {digits}
    if digits.startswith("86") and len(digits) >= 12:
        numbers.add(digits[2:])
    if digits.startswith("0") and 10 <= len(digits) <= 12:
        numbers.update({digits[-8:], digits[-7:]})
    return [n for n in numbers if len(n) >= 7]


def _digits_pattern(digits: str) -> str:
    gap = r"[\s\-‐‑–—()（）.]{0,2}"
    return rf"[(（]?{gap.join(f'[{d}{chr(ord(d) + 0xFEE0)}]' for d in digits)}"


def _own_rules(text: str, own: Own) -> list[str]:
    """Alternatives for the case's own identifiers and phones that occur in `text`, longest first."""
    folded, digits = text.casefold(), re.sub(r"\D", "", text.translate(_FULL_WIDTH))
    identifiers = sorted({v.strip() for v in own.identifiers if len(v.strip()) >= 3 and v.strip().casefold() in folded},
                         key=lambda v: (-len(v), v))
    phones = sorted({n for phone in own.phones for n in _phone_numbers(phone) if n in digits},
                    key=lambda n: (-len(n), n))
    rules = []
    if identifiers:
        alternatives = "|".join(f"(?i:{re.escape(v)})" for v in identifiers)
        rules.append(f"(?<![{_L}{_D}])(?P<own_identifier>{alternatives})(?![{_L}{_D}])")
    if phones:
        rules.append(f"(?<![{_D}])(?P<own_phone>{'|'.join(_digits_pattern(n) for n in phones)})(?![{_D}])")
    return rules


def _pattern(text: str, names: Iterable[str] | None, own: Own) -> re.Pattern:
    """The base rules plus an alternative for each of `names` and of the case's `own` data that may occur in
    `text`."""
    candidates = {
        name.strip()
        for name in (*(names or ()), *own.names)
        if isinstance(name, str) and len(_SPACE.sub("", name)) >= 2 and not set(name) & set("[]")
    }
    compact = _compact(text)
    present = sorted(
        (name for name in candidates if _compact(name) in compact),
        key=lambda name: (-len(_compact(name)), name),
    )
    rules = _own_rules(text, own)
    if present:
        rules.append("(?:" + "|".join(_name_pattern(name) for name in present) + ")")
    if not rules:
        return _BASE
    return re.compile("|".join((_RULES, *rules)), re.VERBOSE)


def scrub(text: str, names: Iterable[str] = (), *, own: Own = Own()) -> str:
    """Replace ID, mobile and landline numbers, hospital identifiers, bed numbers, `names` and the case's `own`
    data in `text`."""
    if not text:
        return ""
    text = _INVISIBLE.sub("", text)
    pattern = _pattern(text, names, own)
    while True:
        scrubbed = pattern.sub(_replace, text)
        if scrubbed == text:
            return scrubbed
        text = scrubbed


def personal_names(mrns: Iterable[str] = ()) -> list[str]:
    """The one list of names the scrubber removes: users, HIS staff, and the patients of these record numbers."""
    return staff_names() + patient_names(mrns)


def staff_names() -> list[str]:
    """Users' display names and HIS staff names (the part of personal_names common to every case)."""
    users = db.session.scalars(sa.select(User.display_name))
    staff = db.session.scalars(sa.select(Staff.name))
    return [n for n in (*users, *staff) if n]


def patient_names(mrns: Iterable[str]) -> list[str]:
    """The names of the patients with these record numbers (the part of personal_names of some cases)."""
    mrns = {mrn for mrn in mrns if mrn}
    return [n for n in db.session.scalars(sa.select(Patient.name).where(Patient.mrn.in_(mrns))) if n] if mrns else []
