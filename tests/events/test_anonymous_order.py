"""Nothing IT or the quality office can read orders an anonymous report among named ones more finely than its hour.

Three reports filed in one hour at distinct seconds: named, anonymous, named. The database is read
as IT would read it, every table and column, and compared before and after each filing.
"""
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

HOUR = datetime(2026, 3, 2, 2, tzinfo=timezone.utc)  # 10:00 in Shanghai
#: The reporter's own facts about the incident, not times of the filing.
REPORTED_FACTS = {"occurred_at", "discovered_at"}


def snapshot() -> dict:
    """Every row of every table, by table and primary key, read through reflection (no ORM model)."""
    from qcflow.extensions import db

    metadata = sa.MetaData()
    metadata.reflect(bind=db.session.connection())
    rows = {}
    for table in metadata.sorted_tables:
        key = [column.name for column in table.primary_key.columns] or [column.name for column in table.columns]
        rows[table.name] = {tuple(row[k] for k in key): dict(row)
                            for row in db.session.execute(sa.select(table)).mappings()}
    rows["__types__"] = {table.name: {c.name: c.type for c in table.columns} for table in metadata.sorted_tables}
    return rows


def written(before: dict, after: dict) -> dict:
    """Rows added or changed between two snapshots: table → list of (row, changed column names)."""
    out = {}
    for table, rows in after.items():
        if table == "__types__":
            continue
        for key, row in rows.items():
            old = before.get(table, {}).get(key)
            changed = set(row) if old is None else {c for c in row if row[c] != old.get(c)}
            if changed:
                out.setdefault(table, []).append((row, changed, old is None))
    return out


def order_values(rows, column):
    return [row[column] for row, _, added in rows if added and row.get(column) is not None]


def record(steps) -> tuple[list[dict], dict]:
    """Run each step and commit; the rows each one wrote."""
    from qcflow.extensions import db

    writes, before = [], snapshot()
    for step in steps:
        step()
        db.session.commit()
        after = snapshot()
        writes.append(written(before, after))
        before = after
    return writes, before["__types__"]


def assert_no_exact_time(writes):
    """No time within the hour on any row the anonymous step wrote (the reporter's facts aside)."""
    assert writes, "the step wrote nothing?"
    for table, rows in writes.items():
        for row, changed, _ in rows:
            for column in changed - REPORTED_FACTS:
                value = row[column]
                if isinstance(value, datetime):
                    assert (value.minute, value.second, value.microsecond) == (0, 0, 0), (table, column, value)


def assert_not_between(writes, types, required_tables):
    """No id, seq or other integer column, nor reference, of the anonymous step's rows lies between the named steps'."""
    first, anonymous, last = writes
    compared = set()
    for table, rows in anonymous.items():
        for column in types[table]:
            if not (isinstance(types[table][column], sa.Integer) or column == "reference"):
                continue
            mine = order_values(rows, column)
            before, after = order_values(first.get(table, []), column), order_values(last.get(table, []), column)
            if mine and before and after:
                compared.add(table)
                assert not any(max(before) < value < min(after) for value in mine), (table, column, before, mine, after)
    assert required_tables <= compared


@pytest.fixture
def filings(ctx, hospital, report_body):
    """File named, anonymous, named at 10:10:07, 10:25:13, 10:40:41; the writes of each filing."""
    from qcflow.core.actors import Actor
    from qcflow.events.services import file_report

    facts = {"occurred_at": HOUR - timedelta(hours=2), "discovered_at": HOUR - timedelta(hours=1)}
    events = []

    def filing(mode, actor, offset):
        def step():
            event, code = file_report(report_body(**facts), mode=mode, actor=actor, now=HOUR + offset)
            events.append((event.id, code))
        return step

    writes, types = record([filing("named", Actor.for_user(hospital["clinician"]), timedelta(minutes=10, seconds=7)),
                            filing("anonymous", Actor.anonymous(), timedelta(minutes=25, seconds=13)),
                            filing("named", Actor.for_user(hospital["nurse"]), timedelta(minutes=40, seconds=41))])
    return {"events": [event_id for event_id, _ in events], "code": events[1][1], "writes": writes, "types": types}


def test_no_row_the_anonymous_filing_wrote_has_an_exact_time_within_its_hour(filings):
    assert_no_exact_time(filings["writes"][1])


def test_no_id_sequence_or_reference_places_the_anonymous_report_between_the_named_ones(filings):
    assert_not_between(filings["writes"], filings["types"], {"adverse_event"})


def test_an_anonymous_reply_is_not_ordered_among_named_replies_either(filings, hospital):
    from qcflow.core.actors import Actor
    from qcflow.events.models import AdverseEvent
    from qcflow.events.services import add_message, messages, reply_by_receipt
    from qcflow.extensions import db

    named_1, anonymous, named_2 = (db.session.get(AdverseEvent, i) for i in filings["events"])
    quality = Actor.for_user(hospital["quality"])
    for event in (named_1, anonymous, named_2):
        add_message(event, "to_reporter", "请补充药品批号", actor=quality, now=HOUR + timedelta(hours=1, minutes=2))
    db.session.commit()
    at = HOUR + timedelta(hours=1)
    writes, types = record([
        lambda: add_message(named_1, "from_reporter", "批号 A1", actor=Actor.for_user(hospital["clinician"]),
                            now=at + timedelta(minutes=10, seconds=5)),
        lambda: reply_by_receipt(filings["code"], "批号 B2", now=at + timedelta(minutes=20, seconds=31)),
        lambda: add_message(named_2, "from_reporter", "批号 C3", actor=Actor.for_user(hospital["nurse"]),
                            now=at + timedelta(minutes=30, seconds=59)),
    ])
    assert_no_exact_time(writes[1])
    assert_not_between(writes, types, {"event_message"})
    # The conversation still reads in order for the quality office.
    assert [m.body for m in messages(anonymous)] == ["请补充药品批号", "批号 B2"]


def test_the_anonymous_audit_entries_are_outside_the_named_reports_chain(filings):
    from qcflow.core import audit
    from qcflow.core.audit import AnonymousAuditEntry, AuditEntry
    from qcflow.extensions import db

    named_1, anonymous, named_2 = (str(i) for i in filings["events"])
    main = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert {e.object_id for e in main if e.object_type == "adverse_event"} == {named_1, named_2}
    own = db.session.scalars(sa.select(AnonymousAuditEntry).order_by(AnonymousAuditEntry.seq)).all()
    assert [(e.action, e.object_id, e.at) for e in own] == [("event.create", anonymous, HOUR),
                                                            ("event.submit", anonymous, HOUR)]
    assert audit.verify().ok and audit.verify().checked == len(main) + 2


def test_the_case_timeline_merges_both_chains_in_time_order(filings, hospital):
    from qcflow.core.actors import Actor
    from qcflow.events.models import AdverseEvent
    from qcflow.events.queries import timeline
    from qcflow.events.services import transition_event
    from qcflow.extensions import db

    event = db.session.get(AdverseEvent, filings["events"][1])
    transition_event(event, "request_info", {"message": "请补充药品批号"}, actor=Actor.for_user(hospital["quality"]),
                     now=HOUR + timedelta(hours=1, minutes=5))
    db.session.commit()
    entries = timeline(event)
    assert [(e.action, e.chain) for e in entries] == [("event.create", "anonymous"), ("event.submit", "anonymous"),
                                                      ("event.request_info", "main")]


def test_the_case_list_places_the_anonymous_report_only_within_its_hour(filings, hospital):
    from qcflow.core.actors import Actor
    from qcflow.events.queries import list_events

    named_1, anonymous, named_2 = filings["events"]
    quality = Actor.for_user(hospital["quality"])
    page, _ = list_events(quality, now=HOUR + timedelta(hours=1))
    assert [e.id for e in page] == [named_2, named_1, anonymous]  # at its stored hour, after that hour's named ones
    walked, cursor = [], None
    for _ in range(4):
        page, cursor = list_events(quality, now=HOUR + timedelta(hours=1), cursor=cursor, limit=1)
        walked += [e.id for e in page]
        if cursor is None:
            break
    assert walked == [named_2, named_1, anonymous]
    head = Actor.for_user(hospital["head"])  # the department's own list: one page per scope column
    assert [e.id for e in list_events(head, now=HOUR + timedelta(hours=1))[0]] == [named_2, named_1, anonymous]


def test_the_quality_office_is_told_of_the_anonymous_report_after_its_hour_in_the_hours_order(filings, hospital):
    from qcflow.events.services import announce_anonymous_reports
    from qcflow.extensions import db
    from qcflow.notify.models import Notification

    named_1, anonymous, named_2 = filings["events"]
    told = lambda: db.session.scalars(sa.select(Notification).where(  # noqa: E731
        Notification.link == f"/events/{anonymous}")).all()
    assert told() == []  # nothing during the hour: a notification's id and e-mail would time it
    assert announce_anonymous_reports(HOUR + timedelta(minutes=59)) == 0
    assert announce_anonymous_reports(HOUR + timedelta(hours=1, minutes=1, seconds=9)) == 1
    db.session.commit()
    assert announce_anonymous_reports(HOUR + timedelta(hours=1, minutes=16)) == 0  # once
    [notice] = told()
    assert notice.user_id == hospital["quality"].id and notice.created_at == HOUR + timedelta(hours=1)
    named = db.session.scalars(sa.select(Notification.id).where(
        Notification.link.in_([f"/events/{named_1}", f"/events/{named_2}"]))).all()
    assert len(named) == 2 and notice.id > max(named)


def test_concurrent_filings_get_distinct_ids_named_ones_in_sequence(app, hospital, report_body):
    """Named ids are counted in the INSERT (SQLite) or by the sequence (PostgreSQL): no two filings collide."""
    import threading

    from qcflow.core.actors import Actor
    from qcflow.events.models import AdverseEvent
    from qcflow.events.services import file_report
    from qcflow.extensions import db

    facts = {"occurred_at": HOUR - timedelta(hours=2), "discovered_at": HOUR - timedelta(hours=1)}
    threads, per_thread, errors = 4, 5, []
    barrier = threading.Barrier(threads)
    user_ids = [hospital["clinician"].id, hospital["nurse"].id]

    def work(t):
        try:
            with app.app_context():
                from qcflow.auth.models import User

                actor = Actor.for_user(db.session.get(User, user_ids[t % 2]))
                barrier.wait()
                for i in range(per_thread):
                    mode = "anonymous" if (t + i) % 3 == 0 else "named"
                    file_report(report_body(**facts), mode=mode, actor=actor,
                                now=HOUR + timedelta(minutes=t * 10 + i, seconds=7))
                    db.session.commit()
        except Exception as error:  # reported below, not lost in the thread
            errors.append(error)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert not errors, errors
    with app.app_context():
        rows = db.session.execute(sa.select(AdverseEvent.id, AdverseEvent.mode)).all()
        named = sorted(i for i, mode in rows if mode != "anonymous")
        assert len(rows) == threads * per_thread and named == list(range(1, len(named) + 1))
        assert all(i >= 2**30 for i, mode in rows if mode == "anonymous")
