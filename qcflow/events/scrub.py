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

`personal_names` is the one list of names every caller passes: pages, API, PDFs, exports,
notifications.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

import sqlalchemy as sa

from qcflow.auth.models import User
from qcflow.clinical.models import Patient, Staff
from qcflow.extensions import db

ID_NUMBER = "[身份证号]"
MOBILE = "[手机号]"
IDENTIFIER = "[编号]"
BED = "[床号]"
NAME = "[姓名]"

_D = "0-9０-９"
_L = "A-Za-zＡ-Ｚａ-ｚ"
_NUMERALS = "一二三四五六七八九十百零两〇"
#: What may stand between a name's characters, or a mobile number's groups.
_GAP = r"[\s\-‐‑‒–—·・.\u0300-\u036f]"
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_RULES = rf"""
(?P<kept>\[(?:身份证号|手机号|编号|床号|姓名)\])
|(?P<label>(?:住院号|病案号|门诊号|病历号|床号|(?i:ID)号)码?|(?i:MRN)|(?P<id_label>身份证(?:号码?)?))
 (?P<sep>\s*+(?:[:：\#＃]\s*+)?)
 (?P<value>(?=[{_L}-]*[{_D}])[{_L}{_D}][{_L}{_D}-]*)
|(?<![{_D}])(?P<id>[{_D}]{{17}}[{_D}XxＸｘ])(?![{_D}])
|(?<![{_D}])
 (?P<mobile>(?:[+＋]?[8８][6６][\s\-‐‑–—]?)?[1１][3-9３-９][{_D}][\s\-‐‑–—]?[{_D}]{{4}}[\s\-‐‑–—]?[{_D}]{{4}})
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
    return NAME


def _compact(text: str) -> str:
    return re.sub(_GAP, "", text).casefold()


def _name_pattern(name: str) -> str:
    if _LATIN.search(name):
        words = r"\s+".join(re.escape(word) for word in name.split())
        return rf"(?<![A-Za-z])(?i:{words})(?![A-Za-z])"
    return f"{_GAP}{{0,2}}".join(re.escape(char) for char in _SPACE.sub("", name))


def _pattern(text: str, names: Iterable[str] | None) -> re.Pattern:
    """The base rules plus an alternative for each of `names` that may occur in `text`."""
    candidates = {
        name.strip()
        for name in names or ()
        if isinstance(name, str) and len(_SPACE.sub("", name)) >= 2 and not set(name) & set("[]")
    }
    compact = _compact(text)
    present = sorted(
        (name for name in candidates if _compact(name) in compact),
        key=lambda name: (-len(_compact(name)), name),
    )
    if not present:
        return _BASE
    names_rule = "|".join(_name_pattern(name) for name in present)
    return re.compile(f"{_RULES}|(?:{names_rule})", re.VERBOSE)


def scrub(text: str, names: Iterable[str] = ()) -> str:
    """Replace ID and mobile numbers, hospital identifiers, bed numbers and `names` in `text`."""
    if not text:
        return ""
    text = _INVISIBLE.sub("", text)
    pattern = _pattern(text, names)
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
