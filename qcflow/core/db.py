"""Declarative base, column types and conventions shared by every model."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, registry

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator):
    """Timezone-aware UTC datetime on every database.

    SQLite hands back naive values (G8); this type refuses naive input and
    re-attaches UTC on the way out, so no naive datetime ever leaves the DB layer.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        value = value.astimezone(timezone.utc)
        # SQLite stores text; keep it naive-UTC so string order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    def bind_processor(self, dialect):
        """SQLite: the stored text in one step, exactly what SQLAlchemy's own DATETIME writes
        (`2026-03-01 22:00:00.000000`): the UTC value's `isoformat` without its offset (1.2 µs), where
        `process_bind_param` and then the dialect's formatting took 3.1 µs. A 30-day catch-up (P3) writes
        260,000 of them; without this its run takes 8 % more CPU, and its 10 s bound on SQLite has been
        missed without it (docs/decisions.md, "Library internals"). Anything else (None, a naive value,
        which is refused, a datetime subclass) and PostgreSQL take the general path. Held to the general
        path's text by tests/core/test_library_contracts.py."""
        general = super().bind_processor(dialect)
        if dialect.name != "sqlite":
            return general
        utc = timezone.utc

        def process(value):
            if type(value) is not datetime or value.tzinfo is None:
                return general(value)
            if value.tzinfo is not utc:
                value = value.astimezone(utc)
            return value.isoformat(" ", "microseconds")[:26]

        return process


class Base(DeclarativeBase):
    # G7: the annotation map must live on a registry, not on the class.
    registry = registry(type_annotation_map={datetime: UTCDateTime})
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class Versioned:
    """Optimistic locking: a stale write raises StaleDataError, which the API turns into 409."""

    version: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls):
        return {"version_id_col": cls.__table__.c.version}


#: Rows that must not be ordered among others (anonymous reports and their replies) get random ids
#: from [UNORDERED_ID_FLOOR, ID_CEILING); the others keep counting below UNORDERED_ID_FLOOR. An id
#: from the shared sequence would order an anonymous row among named ones to the second.
UNORDERED_ID_FLOOR = 2**30
ID_CEILING = 2**31 - 1  # ids are 32-bit keys (the routes' IdConverter)


def new_id(session, model, *, unordered: bool):
    """The id for a new `model` row: random when `unordered`, else the next below the random range.

    None leaves it to the database (PostgreSQL's sequence, which explicit ids never advance).
    SQLite would continue after the highest id, a random one, so the next is counted below them,
    in the INSERT itself (an expression): it runs under the write lock, so two writers never
    count the same id.
    """
    if unordered:
        while True:
            candidate = UNORDERED_ID_FLOOR + secrets.randbelow(ID_CEILING - UNORDERED_ID_FLOOR)
            if session.get(model, candidate) is None:
                return candidate
    if session.get_bind().dialect.name == "postgresql":
        return None
    return (sa.select(sa.func.coalesce(sa.func.max(model.id), 0) + 1).where(model.id < UNORDERED_ID_FLOOR)
            .scalar_subquery())


def enum_check(column: str, values) -> sa.CheckConstraint:
    """CHECK constraint that keeps a string column within an enum's values."""
    allowed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_valid")


def render_item(type_, obj, autogen_context):
    """Render UTCDateTime as a plain type in migrations (G6)."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def include_object(obj, name, type_, reflected, compare_to):
    """Keep tables that are not ours (APScheduler's, if ever stored) out of autogenerate (G5)."""
    if type_ == "table" and name.startswith("apscheduler_"):
        return False
    return not (type_ == "index" and name.startswith("ix_apscheduler_"))


def import_all_models() -> None:
    """Import every models module so metadata is complete (migrations, tests)."""
    import qcflow.auth.models  # noqa: F401
    import qcflow.clinical.models  # noqa: F401
    import qcflow.core.audit  # noqa: F401
    import qcflow.events.lessons.models  # noqa: F401
    import qcflow.events.models  # noqa: F401
    import qcflow.extraction.models  # noqa: F401
    import qcflow.files.models  # noqa: F401
    import qcflow.followup.models  # noqa: F401
    import qcflow.followup.invitations.models  # noqa: F401
    import qcflow.indicators.models  # noqa: F401
    import qcflow.mdt.models  # noqa: F401
    import qcflow.notify.models  # noqa: F401
    import qcflow.region.models  # noqa: F401
    import qcflow.scheduling.models  # noqa: F401


#: Connection.info key: the current transaction has sent something other than a SELECT.
WROTE = "qc_wrote"


def configure_engine(engine: sa.Engine, *, sqlite_mmap: bool = False) -> None:
    """Note which transactions write (end_read_only_transaction); PostgreSQL: sessions in UTC; SQLite:
    WAL, a 5 s busy timeout and foreign keys on every connection, and a memory map if asked."""

    @sa.event.listens_for(engine, "begin")
    def _begin(connection):
        connection.info[WROTE] = False

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _note_write(connection, _cursor, statement, _parameters, _context, _executemany):
        if statement[:6].upper() != "SELECT":
            connection.info[WROTE] = True

    if engine.dialect.name == "postgresql":
        @sa.event.listens_for(engine, "connect")
        def _utc_session(dbapi_connection, _record):
            # Timestamps come back in the session's time zone: UTC, whatever the server's default,
            # as on SQLite; the hospital's time zone is applied in Python and named in SQL.
            dbapi_connection.execute("SET TIME ZONE 'UTC'")
            dbapi_connection.commit()

    if engine.dialect.name != "sqlite":
        return
    in_memory = engine.url.database in (None, "", ":memory:")

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 5000")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        if sqlite_mmap and not in_memory:
            # Reads through a memory map instead of a read() per page into a 2 MB private cache: at 4M
            # tasks the queue page's scattered rows cost a third more that way. The map shares the
            # operating system's page cache between workers; it is address space, not memory, but
            # the pages a process read through it count in its RSS (config.SQLITE_MMAP). Past the
            # first GiB of a larger file, pages are read as before.
            cursor.execute("PRAGMA mmap_size = 1073741824")  # 1 GiB (SQLite caps it near 2 GB)
        cursor.close()


def end_read_only_transaction(exc: BaseException | None = None) -> None:
    """Teardown: end a transaction that only read with COMMIT rather than ROLLBACK.

    The data is the same either way; but psycopg forgets every prepared statement on ROLLBACK, so
    when each GET ended with one, PostgreSQL planned the queue, count and token queries afresh on
    every request (3 ms of a 13 ms queue page). A request that failed, wrote anything, or left
    anything pending, unflushed or audited (entries queued by `audit.record`) still ends with
    ROLLBACK when the session is removed: a request that did not commit leaves nothing behind.
    Registered after Flask-SQLAlchemy's own teardown, so it runs before the session is removed.
    """
    from qcflow.core import audit
    from qcflow.extensions import db

    if exc is not None or not db.session.registry.has():
        return
    session = db.session()
    transaction = session.get_transaction()
    if (transaction is None or not transaction.is_active or session.new or session.dirty or session.deleted
            or audit.pending(session)):
        return
    try:
        if not session.connection().info.get(WROTE, True):
            session.commit()
    except sa.exc.SQLAlchemyError:
        session.rollback()
