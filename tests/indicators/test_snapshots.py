"""Monthly snapshots: frozen once, reproducible after later edits, differences shown."""
from datetime import date, timedelta

import sqlalchemy as sa

from tests.conftest import sh
from tests.indicators.conftest import JUDGED_AT


def snapshot_rows():
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorSnapshot

    db.session.expire_all()
    return list(db.session.scalars(sa.select(IndicatorSnapshot).order_by(IndicatorSnapshot.id)))


def test_freeze_is_idempotent(reference_month, hospital):
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.indicators.definitions import INDICATORS
    from qcflow.indicators.services import freeze_month

    actor = Actor.system("test")
    added = freeze_month(date(2026, 3, 1), actor=actor, now=JUDGED_AT)
    db.session.commit()
    scopes = 1 + 3  # hospital + GS, CARD, QC
    assert added == len(INDICATORS) * scopes
    first = [(r.month_on, r.code, r.department_id, r.numerator, r.denominator, r.frozen_at) for r in snapshot_rows()]
    assert freeze_month(date(2026, 3, 15), actor=actor, now=JUDGED_AT + timedelta(days=1)) == 0
    db.session.commit()
    assert [(r.month_on, r.code, r.department_id, r.numerator, r.denominator, r.frozen_at)
            for r in snapshot_rows()] == first
    hospital_row = next(r for r in snapshot_rows() if r.code == "ae_per_100_discharges" and r.department_id is None)
    assert (hospital_row.numerator, hospital_row.denominator, hospital_row.target, hospital_row.comparison,
            hospital_row.met) == (5, 206, 2.5, "gt", False)


def test_current_month_cannot_be_frozen(hospital):
    import pytest

    from qcflow.core.actors import Actor
    from qcflow.core.errors import Unprocessable
    from qcflow.indicators.services import freeze_month

    with pytest.raises(Unprocessable):
        freeze_month(date(2026, 4, 1), actor=Actor.system("test"), now=JUDGED_AT)


def test_snapshot_survives_later_edits_and_shows_the_difference(reference_month, hospital, clients):
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.indicators.queries import month_values
    from qcflow.indicators.services import freeze_month
    from tests.indicators.conftest import Builder

    freeze_month(date(2026, 3, 1), actor=Actor.system("test"), now=JUDGED_AT)
    db.session.commit()
    # A March report that reached the system after the freeze (e.g. a corrected submission time).
    Builder(hospital, reference_data=False).event(hospital["cardio"], "submitted", sh(2026, 3, 30, 10))
    db.session.commit()

    values = {v.code: v for v in month_values(date(2026, 3, 1), now=JUDGED_AT + timedelta(days=5), compare=True)}
    frozen = values["ae_per_100_discharges"]
    assert (frozen.numerator, frozen.denominator, frozen.frozen_at is not None) == (5, 206, True)
    assert frozen.differs and (frozen.recomputed.numerator, frozen.recomputed.denominator) == (6, 206)
    assert not values["preop_mdt_rate_level4"].differs
    # Without comparing, the month reads as frozen: a printed bulletin is reproduced exactly.
    plain = {v.code: v for v in month_values(date(2026, 3, 1), now=JUDGED_AT + timedelta(days=5))}
    assert (plain["ae_per_100_discharges"].numerator, plain["ae_per_100_discharges"].recomputed) == (5, None)

    body = clients("quality").get("/api/v1/indicators?from=2026-03-01&to=2026-03-31").get_json()
    item = next(i for i in body if i["code"] == "ae_per_100_discharges")
    assert item["numerator"] == 5 and item["frozen_at"] and item["differs"] is True
    assert item["recomputed"]["numerator"] == 6 and item["recomputed"]["denominator"] == 206
    trend = clients("quality").get("/api/v1/indicators/ae_per_100_discharges?month=2026-03").get_json()
    march = trend["months"][-1]
    assert march["month"] == "2026-03" and march["numerator"] == 5 and march["differs"] is True
    # A department sees its own department's snapshot.
    card = clients("card_head").get("/api/v1/indicators?from=2026-03-01&to=2026-03-31").get_json()
    card_item = next(i for i in card if i["code"] == "ae_per_100_discharges")
    assert (card_item["numerator"], card_item["recomputed"]["numerator"]) == (1, 2)
    page = clients("quality").get("/indicators?from=2026-03-01&to=2026-03-31&lang=en").get_data(as_text=True)
    assert "Recomputed now" in page


def test_trend_uses_snapshots(reference_month):
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorSnapshot
    from qcflow.indicators.queries import trend
    from qcflow.indicators.services import freeze_month

    freeze_month(date(2026, 3, 1), actor=Actor.system("test"), now=JUDGED_AT)
    db.session.execute(sa.update(IndicatorSnapshot).where(IndicatorSnapshot.code == "day_surgery_share",
                                                          IndicatorSnapshot.department_id.is_(None))
                       .values(numerator=2))
    db.session.commit()
    points = trend("day_surgery_share", date(2026, 4, 1), now=JUDGED_AT)
    assert len(points) == 12 and points[0][0] == date(2025, 5, 1) and points[-1][0] == date(2026, 4, 1)
    assert points[-2][1].numerator == 2 and points[-2][1].frozen_at is not None
    assert points[-1][1].frozen_at is None


def test_nightly_job_freezes_the_previous_month_once(app, reference_month, runner):
    from qcflow.extensions import db
    from qcflow.scheduling.jobs import find_job
    from qcflow.scheduling.runner import run_job

    spec = find_job("indicators.freeze_snapshots")
    assert spec is not None and spec.trigger == "cron"
    first = run_job(spec, JUDGED_AT)
    second = run_job(spec, JUDGED_AT + timedelta(days=1))
    assert first.status == "ok" and first.result.startswith("2026-03: snapshot rows added ")
    assert second.status == "ok" and second.result == "2026-03: snapshot rows added 0"
    db.session.expire_all()
    assert {r.month_on for r in snapshot_rows()} == {date(2026, 3, 1)}


def test_cli_freeze_and_targets(runner, reference_month):
    from qcflow.extensions import db
    from qcflow.indicators.queries import compute, targets_for

    result = runner.invoke(args=["qcflow", "indicators", "freeze", "--month", "2026-03"])
    assert result.exit_code == 0 and "2026-03: snapshot rows added" in result.output
    again = runner.invoke(args=["qcflow", "indicators", "freeze", "--month", "2026-03"])
    assert again.exit_code == 0 and again.output.strip().endswith("added 0")
    bad = runner.invoke(args=["qcflow", "indicators", "freeze", "--month", "March"])
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output
    result = runner.invoke(args=["qcflow", "indicators", "set-target", "--code", "day_surgery_share", "--level",
                                 "tertiary", "--year", "2026", "--comparison", "ge", "--value", "15"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert targets_for(2026)["day_surgery_share"].value == 15.0
    share = compute(date(2026, 3, 1), date(2026, 3, 31), codes=["day_surgery_share"], now=JUDGED_AT)[0]
    assert (share.target, share.met) == (15.0, True)
    wrong = runner.invoke(args=["qcflow", "indicators", "set-target", "--code", "nope", "--level", "tertiary",
                                "--year", "2026", "--comparison", "ge", "--value", "1"])
    assert wrong.exit_code == 2
