"""Marshmallow base schema and shared fields."""
import datetime as dt
import functools
import re

from flask_babel import lazy_gettext as _l
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from marshmallow.decorators import POST_DUMP, PRE_DUMP
from marshmallow.utils import _get_value_for_key, ensure_text_type, missing

_UNPLANNED = object()


def _integer(value):
    return value if value is None or type(value) is int else int(value)


def _string(value):
    return value if value is None or type(value) is str else ensure_text_type(value)


def _fast_serializer(field):
    """A one-argument stand-in for `field._serialize(value, attr, obj)` that gives the same result for
    the plain fields a page is mostly made of (Integer, String, Boolean, DateTime, Date with
    marshmallow's defaults; Nested, and List of those), or None for any other field (it keeps its own `_serialize`)."""
    kind = type(field)
    if kind is fields.Integer and not field.as_string:
        return _integer
    if kind is fields.String:
        return _string
    if kind is fields.Boolean and field.truthy is fields.Boolean.truthy and field.falsy is fields.Boolean.falsy:
        serialize = field._serialize
        return lambda value: value if value is None or value is True or value is False else serialize(value, None, None)
    if kind in (fields.DateTime, fields.Date, DateTime, Date):
        formatted = kind.SERIALIZATION_FUNCS.get(field.format or kind.DEFAULT_FORMAT)
        if formatted is not None:
            return lambda value: None if value is None else formatted(value)
    if kind is fields.Nested or (kind is fields.List and _fast_serializer(field.inner) is not None):
        return functools.partial(field._serialize, attr=None, obj=None)
    return None


class _DumpPlan(tuple):
    """(name, key, attribute, checks attribute, default, field._serialize) per dump field; and `fast`,
    (key, attribute, one-argument serializer) per field, when every field looks its value up and has a
    fast serializer: a plain dict holding every key is then dumped in one comprehension."""

    fast: tuple | None = None


def _dump_plan(schema: Schema):
    """The schema's _DumpPlan, or None when the schema needs marshmallow's general path (dump hooks, a
    custom accessor, dotted attributes, or a field that changes how values are looked up)."""
    if (schema._hooks[PRE_DUMP] or schema._hooks[POST_DUMP]
            or type(schema).get_attribute is not Schema.get_attribute):
        return None
    plan, fast = [], []
    for name, field in schema.dump_fields.items():
        attribute = field.attribute if field.attribute is not None else name
        if (type(field).serialize is not fields.Field.serialize or type(field).get_value is not fields.Field.get_value
                or "." in attribute):
            return None
        key = field.data_key if field.data_key is not None else name
        plan.append((name, key, attribute, field._CHECK_ATTRIBUTE, field.dump_default, field._serialize))
        serializer = _fast_serializer(field) if field._CHECK_ATTRIBUTE else None
        fast.append(serializer and (key, attribute, serializer))
    result = _DumpPlan(plan)
    if None not in fast and schema.dict_class is dict:
        result.fast = tuple(fast)
    return result


#: The years a date or a date-time of the API may fall in. Beyond them no record of a hospital makes sense,
#: and nearer to year 1 or 9999 a shift by a time zone or a deadline overflows Python's datetime.
MIN_YEAR, MAX_YEAR = 1900, 2200

_OUT_OF_RANGE = _l("Enter a date between the years %(low)s and %(high)s.", low=MIN_YEAR, high=MAX_YEAR)


class _Translated:
    """Field errors as text in the request's language (a lazy message would be kept as an iterable)."""

    def make_error(self, key: str, **kwargs) -> ValidationError:
        return ValidationError(str(self.error_messages[key]).format(**kwargs))


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
    PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

    def __init__(self, **kwargs):
        kwargs["metadata"] = {"pattern": self.PATTERN.pattern, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> dt.date:
        match = self.PATTERN.match(value) if isinstance(value, str) else None
        if match is None:
            raise self.make_error("invalid")
        if not MIN_YEAR <= int(match.group(1)) <= MAX_YEAR:
            raise self.make_error("range")
        return dt.date(int(match.group(1)), int(match.group(2)), 1)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else f"{value.year:04d}-{value.month:02d}"


class Dumped(dict):
    """A response body built in its schema's output form by the query that read it: JSON values, and
    dates and datetimes, which the API's JSON encoder writes in ISO 8601 as the schema's fields do
    (core/web.py). `BaseSchema.dump` hands it over unchanged: dumping a 50-task queue page field by
    field cost more than reading it. Tests compare such a body with marshmallow's dump of it."""


class BaseSchema(Schema):
    class Meta:
        # Unknown fields are an error: a body cannot smuggle in state, version or owner.
        unknown = RAISE

    def dump(self, obj, *, many: bool | None = None):
        """Marshmallow's dump, with the per-field lookups worked out once per schema instance.

        Same output as `Schema.dump` (each field's own `_serialize` formats the value, values are
        looked up as `marshmallow.utils.get_value` does); a page of 50 rows is dumped several times
        faster because the generic per-field plumbing is not repeated for every value.
        """
        if type(obj) is Dumped:
            return obj
        plan = self.__dict__.get("_qc_dump_plan", _UNPLANNED)
        if plan is _UNPLANNED:
            plan = self._qc_dump_plan = _dump_plan(self)
        if plan is None or obj is None:
            return super().dump(obj, many=many)
        many = self.many if many is None else bool(many)
        if many:
            return [self._dump_one(plan, item) for item in obj]
        return self._dump_one(plan, obj)

    def _dump_one(self, plan, obj) -> dict:
        plain = type(obj) is dict
        if plain and plan.fast is not None:
            try:
                return {key: serialize(obj[attribute]) for key, attribute, serialize in plan.fast}
            except KeyError:
                pass  # a value left out: its default, or no key (marshmallow's rules, below)
        ret = self.dict_class()
        keyed = not plain and hasattr(obj, "__getitem__")
        for name, key, attribute, check, default, serialize in plan:
            if check:
                if plain:
                    value = obj.get(attribute, _UNPLANNED)
                    if value is _UNPLANNED:
                        value = getattr(obj, attribute, missing)
                elif keyed:
                    value = _get_value_for_key(obj, attribute, missing)
                else:
                    value = getattr(obj, attribute, missing)
                if value is missing:
                    value = default() if callable(default) else default
                    if value is missing:
                        continue
            else:
                value = None
            ret[key] = serialize(value, name, obj)
        return ret


class QueryArgs(BaseSchema):
    """Base of every query-string schema: `lang` is accepted everywhere."""

    lang = fields.String(load_default=None, validate=validate.OneOf(["zh", "en"]))


class CursorArgs(QueryArgs):
    """Keyset pagination: pass the previous page's next_cursor."""

    cursor = fields.Integer(load_default=None, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class Page(BaseSchema):
    """A page of a keyset-paginated list: each domain adds its `items`; `next_cursor` is the `cursor` of
    the next page, null on the last one."""

    next_cursor = fields.Integer(allow_none=True)
