"""Marshmallow base schema and shared fields."""
import datetime as dt
import re

from flask import current_app
from flask_babel import lazy_gettext as _l
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from qcflow.core.periods import MONTH, parse_month

#: Control characters (C0, DEL, C1), and the bidirectional overrides and isolates that make text read other than it
#: is stored (a note that shows one thing to the nurse and holds another); tab, newline and carriage return are text
#: in a long field (a reason).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_IN_LONG_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: From this length a text field is long text, where tab and line breaks are allowed.
LONG_TEXT = 1000


CONTROL_MESSAGE = _l("Control characters (such as NUL or ESC) are not allowed in text.")


def control_characters_in(value: str, *, long_text: bool = False) -> bool:
    """Whether `value` holds what no_control_characters refuses (for a service that reads text no schema loaded)."""
    return bool((_CONTROL_IN_LONG_TEXT if long_text else _CONTROL).search(value or ""))


def no_control_characters(long_text: bool = False):
    """A validator refusing control characters (NUL, ESC, bell…): PostgreSQL cannot store NUL, and the others
    garble pages, exports and terminals. Long text keeps its tabs and line breaks.

    It makes the validator: `validate=[no_control_characters()]`. Listed without the call it would be called with
    the value and check nothing, so that mistake is refused at once."""
    if not isinstance(long_text, bool):
        raise TypeError("no_control_characters() makes the validator: write validate=[no_control_characters()]")
    def check(value: str) -> None:
        if control_characters_in(value, long_text=long_text):
            raise ValidationError(str(CONTROL_MESSAGE))
    return check


def Text(max_length: int, *, min_length: int | None = None, **kw) -> fields.String:  # noqa: N802 (a field)
    """Free text of at most `max_length` characters (at least `min_length`), without control characters or
    bidirectional overrides; long text (LONG_TEXT characters allowed or more) keeps its tabs and line breaks."""
    return fields.String(validate=[validate.Length(min=min_length, max=max_length),
                                   no_control_characters(long_text=max_length >= LONG_TEXT)], **kw)


#: The years a date or a date-time of the API may fall in. Beyond them no record of a hospital makes sense,
#: and nearer to year 1 or 9999 a shift by a time zone or a deadline overflows Python's datetime.
MIN_YEAR, MAX_YEAR = 1900, 2200

_OUT_OF_RANGE = _l("Enter a date between the years %(low)s and %(high)s.", low=MIN_YEAR, high=MAX_YEAR)


class _Translated:
    """Field errors as text in the request's language (a lazy message would be kept as an iterable)."""

    def make_error(self, key: str, **kwargs) -> ValidationError:
        return ValidationError(str(self.error_messages[key]).format(**kwargs))


def Choice(codes, *, example: str, label_kind: str | None = None, **kw) -> fields.String:  # noqa: N802 (a field)
    """One code of a fixed list (an unknown one is refused with the list of valid codes, which the OpenAPI
    document names as the field's enum). With `label_kind`, the code's label in Chinese or English is
    taken for the code (a CSV typed by hand says 麻醉科), and a refusal lists the labels, not the codes."""
    codes = list(codes)
    metadata = {"example": example, "enum": codes, **kw.pop("metadata", {})}
    if label_kind is None:
        return fields.String(validate=validate.OneOf(codes), metadata=metadata, **kw)
    return _Labelled(codes, label_kind, metadata=metadata, **kw)


class WholeNumber(fields.Integer):
    """An integer as it is written: 12, "12" or 12.0. marshmallow's Integer cuts 1.9 (or "1.9") to 1, which would
    store a number nobody entered; here it is the field's error. Every integer field of the API and the pages."""

    def _validated(self, value):
        if (isinstance(value, float) and not value.is_integer()) or (
                isinstance(value, str) and not re.fullmatch(r"\s*[+-]?\d+\s*", value)):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class _Labelled(fields.String):
    def __init__(self, codes: list[str], label_kind: str, **kw):
        super().__init__(**kw)
        self.codes, self.label_kind = codes, label_kind

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        from flask_babel import force_locale, gettext

        from qcflow.core.i18n import label, label_list

        value = super()._deserialize(value, attr, data, **kwargs)
        if value in self.codes:
            return value
        by_label = {}
        for language in ("zh", "en"):
            with force_locale(language):
                by_label.update({label(self.label_kind, code).casefold(): code for code in self.codes})
        found = by_label.get(value.strip().casefold())
        if found is not None:
            return found
        raise ValidationError(gettext("“%(value)s” is not in the list: %(choices)s.", value=value,
                                      choices=label_list(self.label_kind, self.codes)))


class DateTime(_Translated, fields.AwareDateTime):
    """Every date-time of the API: ISO 8601 with its offset, within MIN_YEAR..MAX_YEAR, loaded as UTC.

    Dumped as marshmallow's DateTime dumps (ISO 8601)."""

    default_error_messages = {"range": _OUT_OF_RANGE}

    def _deserialize(self, value, attr, data, **kwargs) -> dt.datetime:
        value = super()._deserialize(value, attr, data, **kwargs)
        if not MIN_YEAR <= value.year <= MAX_YEAR:  # first as written: year 9999 would overflow in UTC
            raise self.make_error("range")
        value = value.astimezone(dt.timezone.utc)
        if not MIN_YEAR <= value.year <= MAX_YEAR:  # then as stored: 1900-01-01T00:00+14:00 is 1899 in UTC
            raise self.make_error("range")
        return value


class Date(_Translated, fields.Date):
    """Every date of the API: YYYY-MM-DD within MIN_YEAR..MAX_YEAR."""

    default_error_messages = {"range": _OUT_OF_RANGE}

    def _deserialize(self, value, attr, data, **kwargs) -> dt.date:
        value = super()._deserialize(value, attr, data, **kwargs)
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            raise self.make_error("range")
        return value


class Month(_Translated, fields.String):
    """A month given as YYYY-MM (within MIN_YEAR..MAX_YEAR), loaded as its first day; dumped as YYYY-MM."""

    default_error_messages = {"invalid": _l("Enter a month as YYYY-MM."), "range": _OUT_OF_RANGE}

    def __init__(self, **kwargs):
        kwargs["metadata"] = {"pattern": MONTH.pattern, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> dt.date:
        if not isinstance(value, str) or MONTH.fullmatch(value) is None:
            raise self.make_error("invalid")
        month = parse_month(value)  # None: a year outside the calendar (0000)
        if month is None or not MIN_YEAR <= month.year <= MAX_YEAR:
            raise self.make_error("range")
        return month

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else f"{value.year:04d}-{value.month:02d}"


#: Where `DepartmentId` finds a department's id by its code: the kernel knows no department model, the
#: auth domain installs the lookup at app creation (code → id, or None for no such code).
DEPARTMENT_LOOKUP = "qcflow.department_lookup"


class DepartmentId(_Translated, fields.Field):
    """A department, given by its id or by its code (GS): loaded as its id.

    A JSON number is an id. Text is a code when a department has that code (HIS codes are often digits:
    "0301"), else, when it is digits, an id; an unknown code is refused here like an unknown id is where
    the id is used ("No such department."). Which department the actor may read is not this field's
    question (auth.permissions.department_for)."""

    default_error_messages = {"invalid": _l("Give a department's id or code."),
                              "unknown": _l("No such department.")}

    def __init__(self, **kwargs):
        kwargs["metadata"] = {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "maxLength": 40}],
                              "example": "GS", "description": "Department id or code",
                              **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        if not isinstance(value, str) or not 0 < len(value.strip()) <= 40:
            raise self.make_error("invalid")
        value = value.strip()
        found = current_app.extensions[DEPARTMENT_LOOKUP](value)
        if found is not None:
            return found
        if value.isascii() and value.isdigit():
            if int(value) < 1:
                raise self.make_error("invalid")
            return int(value)
        raise self.make_error("unknown")

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class Dumped(dict):
    """A response body built in its schema's output form by the query that read it: JSON values, and
    dates and datetimes, which the API's JSON encoder writes in ISO 8601 as the schema's fields do
    (core/web.py). `BaseSchema.dump` hands it over unchanged: dumped by marshmallow, the queue page (P4)
    costs about 1.5 times the CPU (docs/decisions.md, "Library internals"). Tests compare such a body
    with marshmallow's dump of it."""


class BaseSchema(Schema):
    class Meta:
        # Unknown fields are an error: a body cannot smuggle in state, version or owner.
        unknown = RAISE

    def dump(self, obj, *, many: bool | None = None):
        """Marshmallow's dump, except for a body already built in the schema's form (`Dumped`)."""
        if type(obj) is Dumped:
            return obj
        return super().dump(obj, many=many)


class QueryArgs(BaseSchema):
    """Base of every query-string schema: `lang` is accepted everywhere."""

    lang = fields.String(load_default=None, validate=validate.OneOf(["zh", "en"]))


class CursorArgs(QueryArgs):
    """Keyset pagination: pass the previous page's next_cursor."""

    cursor = WholeNumber(load_default=None, validate=validate.Range(min=1))
    limit = WholeNumber(load_default=50, validate=validate.Range(min=1, max=100))


class Page(BaseSchema):
    """A page of a keyset-paginated list: each domain adds its `items`; `next_cursor` is the `cursor` of
    the next page, null on the last one."""

    next_cursor = WholeNumber(allow_none=True)
