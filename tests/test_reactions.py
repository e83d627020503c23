"""The reactions table: installed by create_app, complete, and loud when missing."""
from __future__ import annotations

import ast
from datetime import date, datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask

ROOT = Path(__file__).resolve().parent.parent / "qcflow"


def _used(kind: str) -> set[str]:
    """The fact or question names the code passes to reactions.publish / reactions.ask."""
    names = set()
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == kind
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "reactions"):
                assert node.args and isinstance(node.args[0], ast.Constant), f"{path}:{node.lineno}: name as a literal"
                names.add(node.args[0].value)
    return names


def test_every_fact_and_question_used_is_in_the_table_and_nothing_more(app):
    from qcflow.reactions import table

    wired = table()
    assert _used("publish") == set(wired.facts)
    assert _used("ask") == set(wired.answers)


def test_create_app_installs_the_table(app):
    from qcflow.reactions import EXTENSION, table

    installed, fresh = app.extensions[EXTENSION], table()
    assert installed.answers == fresh.answers
    assert ({fact: [h.__qualname__ for h in handlers] for fact, handlers in installed.facts.items()}
            == {fact: [h.__qualname__ for h in handlers] for fact, handlers in fresh.facts.items()})


def test_a_process_without_the_table_fails_instead_of_skipping_the_work():
    from qcflow import reactions
    from qcflow.events.workflow import discussion_guard

    bare = Flask("bare")
    with bare.app_context():
        with pytest.raises(RuntimeError, match="create_app"):
            reactions.publish("operation.performed", object(), now=datetime(2026, 3, 1, tzinfo=timezone.utc))
        with pytest.raises(RuntimeError, match="create_app"):
            discussion_guard(SimpleNamespace(confirmed_grade="II", is_unplanned_reoperation=False))


def test_a_death_is_reviewed_by_the_mdt_then_stops_follow_up_as_of_the_hospitals_day(monkeypatch):
    """Order of the work a recorded death starts, and the day follow-up counts: a death at 00:30 in the
    hospital's time zone (still the previous day in UTC) stops the plans as of the hospital's day; then the
    death waits for the triggers."""
    from qcflow import reactions
    from qcflow.extraction import services as extraction
    from qcflow.followup import services as followup
    from qcflow.mdt import services as mdt

    calls = []
    monkeypatch.setattr(extraction, "on_death", lambda patient, **kw: calls.append(("extraction", kw["died_at"])))
    monkeypatch.setattr(mdt, "on_death", lambda patient, **kw: calls.append(("mdt", kw["died_at"])))
    monkeypatch.setattr(followup, "on_death", lambda patient, **kw: calls.append(("followup", kw["died_on"])))
    app = Flask("tz")
    app.config["TIMEZONE"] = "Asia/Shanghai"
    reactions.install(app)
    died_at = datetime(2026, 3, 1, 16, 30, tzinfo=timezone.utc)
    with app.app_context():
        reactions.publish("death.recorded", object(), died_at=died_at, encounter=None, now=died_at)
    assert calls == [("mdt", died_at), ("followup", date(2026, 3, 2)), ("extraction", died_at)]
