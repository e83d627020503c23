"""What qcflow's own shortcuts through its libraries rely on (docs/decisions.md, "Library internals").

`core/db.py: UTCDateTime` writes SQLite timestamps in one step where SQLAlchemy's TypeDecorator takes
two, and reads them back through SQLAlchemy's own path; `core/schemas.py: Dumped` hands a body built in
its schema's form to the JSON encoder without a dump. A
routine upgrade of SQLAlchemy, psycopg, marshmallow or orjson that changes what those shortcuts assume
fails here, instead of changing what is stored or sent.
"""
import re
from datetime import date, datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import given, settings, strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from qcflow.core.db import UTCDateTime

ROOT = Path(__file__).resolve().parents[2]
#: The libraries whose behaviour the shortcuts copy; each is pinned to one version.
RELIED_ON = ("marshmallow", "SQLAlchemy", "psycopg", "orjson")

ZONES = [timezone.utc, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30)),
         ZoneInfo("Asia/Shanghai")]
#: Pure conversions: a slow example is a busy machine, not a failure.
patient = settings(deadline=None)
INSTANTS = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 12, 30),
                        timezones=st.sampled_from(ZONES))


def pins(name: str) -> dict[str, str]:
    pinned = {}
    for line in (ROOT / name).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)", line.strip())
        if match:
            pinned[match.group(1).lower()] = match.group(2)
    return pinned


def test_the_libraries_relied_on_are_pinned_and_installed_at_their_pin():
    """An upgrade goes through requirements.txt and constraints.txt, and then through these tests."""
    required, constrained = pins("requirements.txt"), pins("constraints.txt")
    for name in RELIED_ON:
        assert required[name.lower()] == constrained[name.lower()] == metadata.version(name), name


def general_bind(dialect):
    """SQLAlchemy's own path for a UTCDateTime value: process_bind_param, then the dialect's DATETIME."""
    return sa.TypeDecorator.bind_processor(UTCDateTime().dialect_impl(dialect), dialect)


def reader(dialect):
    return UTCDateTime()._cached_result_processor(dialect, None)


@patient
@given(INSTANTS)
def test_sqlite_writes_the_text_sqlalchemy_writes_and_reads_the_instant_back(value):
    """The one-step SQLite writer stores exactly the text of the general path (so text order stays time
    order, and rows written either way compare equal); read back, it is the same instant in UTC, from
    that text and from text written by other hands (no fraction, an offset of its own)."""
    dialect = sqlite.dialect()
    stored = UTCDateTime()._cached_bind_processor(dialect)(value)
    assert stored == general_bind(dialect)(value)
    utc = value.astimezone(timezone.utc)
    assert reader(dialect)(stored) == utc
    for text in (stored, stored[:19], stored + "+00:00", utc.isoformat()):
        got = reader(dialect)(text)
        assert got.tzinfo is timezone.utc and got == utc.replace(microsecond=0 if text == stored[:19] else utc.microsecond)


@pytest.mark.parametrize("text, instant", [
    ("2026-05-01", datetime(2026, 5, 1, tzinfo=timezone.utc)),
    ("2026-05-01 12:00:00+08:00", datetime(2026, 5, 1, 4, tzinfo=timezone.utc)),
    ("2026-05-01T04:00:00", datetime(2026, 5, 1, 4, tzinfo=timezone.utc)),
])
def test_sqlite_reads_other_text_as_utc(text, instant):
    got = reader(sqlite.dialect())(text)
    assert got == instant and got.tzinfo is timezone.utc


@patient
@given(INSTANTS)
def test_postgresql_values_are_read_as_utc(value):
    """psycopg hands back aware datetimes in the session's zone (UTC, configure_engine) or another."""
    read, utc = reader(postgresql.psycopg.dialect()), value.astimezone(timezone.utc)
    for given_back in (value, value.astimezone(timezone.utc), value.astimezone(ZoneInfo("UTC"))):
        got = read(given_back)
        assert got == utc and got.tzinfo is timezone.utc
    assert read(None) is None


def test_naive_values_are_refused_on_both_paths():
    for dialect in (sqlite.dialect(), postgresql.psycopg.dialect()):
        for process in (UTCDateTime()._cached_bind_processor(dialect), general_bind(dialect)):
            with pytest.raises(ValueError, match="naive"):
                process(datetime(2026, 5, 1, 12, 0))


@pytest.fixture
def stamps(app):
    """A scratch table with one UTCDateTime column on the test database (SQLite or PostgreSQL)."""
    from qcflow.extensions import db

    table = sa.Table("library_contract_stamp", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("at", UTCDateTime(), nullable=True))
    with app.app_context():
        table.create(db.engine)
        try:
            yield table, db.engine
        finally:
            table.drop(db.engine)


def test_timestamps_round_trip_through_the_database(stamps):
    """Written and read back through the driver: the same instant, in `timezone.utc`, microseconds kept;
    SQLite stores the text SQLAlchemy's DATETIME stores (so text order is time order), and PostgreSQL
    (sessions in UTC) hands back values in UTC."""
    table, engine = stamps
    values = [datetime(2026, 3, 1, 22, 0, tzinfo=timezone.utc),
              datetime(2026, 3, 2, 6, 0, 0, 123456, tzinfo=ZoneInfo("Asia/Shanghai")),
              datetime(1900, 1, 1, 0, 0, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
              datetime(2200, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc), None]
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i, "at": v} for i, v in enumerate(values)])
    with engine.connect() as conn:
        back = conn.execute(sa.select(table.c.at).order_by(table.c.id)).scalars().all()
        raw = conn.exec_driver_sql("SELECT at FROM library_contract_stamp ORDER BY id").scalars().all()
        ordered = conn.execute(sa.select(table.c.id).where(table.c.at.is_not(None)).order_by(table.c.at)).scalars().all()
    assert back == values
    assert all(v.tzinfo is timezone.utc for v in back if v is not None)
    assert ordered == sorted(range(4), key=lambda i: values[i])
    if engine.dialect.name == "sqlite":
        general = sa.DateTime()._cached_bind_processor(sqlite.dialect())
        assert raw[:4] == [general(v.astimezone(timezone.utc).replace(tzinfo=None)) for v in values[:4]]
    else:
        assert all(v.utcoffset() == timedelta(0) for v in raw if v is not None)


def test_a_dumped_body_is_what_marshmallow_dumps(app):
    """Dumped bodies hold dates and datetimes as values; the JSON encoder writes them as marshmallow's
    Date and DateTime fields do (ISO 8601, the offset kept, microseconds only when there are some)."""
    from marshmallow import Schema, fields

    from qcflow.core.schemas import BaseSchema, Dumped

    class Item(BaseSchema):
        at = fields.DateTime(allow_none=True)
        day = fields.Date(allow_none=True)
        n = fields.Integer(allow_none=True)
        text = fields.String(allow_none=True)
        flag = fields.Boolean()

    class Page(BaseSchema):
        items = fields.List(fields.Nested(Item))
        next_cursor = fields.Integer(allow_none=True)

    items = [{"at": datetime(2026, 3, 2, 1, 30, 5, 120, tzinfo=timezone.utc), "day": date(2026, 3, 2), "n": 1,
              "text": "中文", "flag": True},
             {"at": datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=8))), "day": None, "n": None,
              "text": None, "flag": False}]
    body = Dumped(items=items, next_cursor=None)
    with app.test_request_context():
        sent = app.json.response(Page().dump(body)).get_data()
        dumped = app.json.response(Schema.dump(Page(), body)).get_data()
    assert Page().dump(body) is body
    assert sent == dumped
