"""The annual monitoring form and the quarterly report: the annex's rows in its order and wording, the period's
values, targets and met in the right cells, archived frozen with a deterministic JSON twin, revisions, the
rules on periods, permissions, and the January reminder."""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from tests.conftest import sh
from tests.indicators.xlsxread import cells, row_of, sheet_xml

#: After 2026 has ended and settled: the annual form for 2026 may be generated.
JANUARY = sh(2027, 1, 5, 10, 0)
#: The first quarter of 2026 has settled (the reference month is March 2026).
APRIL = sh(2026, 4, 10, 9, 0)
#: Columns of the annual form (0-based): no., dimension, wording, indicator, unit, value, numerator, denominator,
#: plan target, target used, met, status.
SEQ, DIMENSION, WORDING, NAME, UNIT, VALUE, NUMERATOR, DENOMINATOR, PLAN_TARGET, TARGET, MET, STATUS = range(12)


def plans_with_rows():
    from qcflow.indicators import catalogue

    return [plan for plan in catalogue.PLAN_KEYS if catalogue.annex(plan)]


def report(hospital, code, month, state, numerator=None, denominator=None, value=None, department="surgery"):
    """A reported monthly value, written as the reporting workflow leaves it."""
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorReport

    row = IndicatorReport(code=code, month_on=month, department_id=hospital[department].id, numerator=numerator,
                          denominator=denominator, value=value if value is not None else (
                              numerator * 100 / denominator if denominator else None),
                          state=state, channel="page", submitted_at=sh(month.year, month.month, 28),
                          submitted_by="user:1")
    db.session.add(row)
    db.session.flush()
    return row


@pytest.fixture
def generate(hospital, actor_of):
    from qcflow.extensions import db
    from qcflow.indicators import forms

    def run(kind="annual", year=2026, quarter=None, *, now=JANUARY, plan="henan", draft=False, who="quality"):
        form = forms.generate_form(plan, kind, year, quarter, actor=actor_of(who), now=now, draft=draft)
        db.session.commit()
        return form

    return run


def test_annual_form_lists_every_annex_row_in_order_and_wording(app, hospital, generate):
    from qcflow.indicators import catalogue

    for plan in plans_with_rows():
        form = generate(plan=plan)
        annex = catalogue.annex(plan)
        found = cells(form.xlsx)
        header = row_of(found, SEQ, "序号")
        lines = sorted((row, value) for (row, col), value in found.items() if col == WORDING and row > header)
        assert [value for _row, value in lines] == [row.wording for row in annex]
        assert [found[(row, SEQ)] for row, _value in lines] == [row.seq for row in annex]
        assert [found[(row, DIMENSION)] for row, _value in lines] == [row.dimension for row in annex]
        twin = json.loads(form.snapshot)
        assert [(r["seq"], r["wording"], r["wording_en"], [c["code"] for c in r["codes"]]) for r in twin["rows"]] == [
            (row.seq, row.wording, row.wording_en, list(row.codes)) for row in annex]


def set_target(code, comparison, value, year=2026):
    from qcflow.core.actors import Actor
    from qcflow.indicators import services

    services.set_target(code, "tertiary", year, comparison, value, actor=Actor.system("test"), now=JANUARY,
                        expected_version=None)


def test_values_targets_and_met_land_in_their_cells(app, hospital, reference_month, generate):
    from qcflow.indicators import queries

    set_target("followup_rate_level4", "ge", 90)
    set_target("pain_assessment_rate", "ge", 80)
    for month in range(1, 11):  # January..October approved (9 of 10 each), November awaiting approval
        report(hospital, "pain_assessment_rate", date(2026, month, 1), "approved", 9, 10)
    report(hospital, "pain_assessment_rate", date(2026, 11, 1), "submitted", 1, 10)
    form = generate()
    found = cells(form.xlsx)
    expected = queries.catalogue_values(date(2026, 1, 1), date(2026, 12, 31), now=JANUARY)

    followup = row_of(found, NAME, "四级手术患者有效随访率")
    value = expected["followup_rate_level4"]
    assert found[(followup, VALUE)] == pytest.approx(value.value, abs=1e-4)
    assert (found[(followup, NUMERATOR)], found[(followup, DENOMINATOR)]) == (value.numerator, value.denominator)
    assert (found[(followup, PLAN_TARGET)], found[(followup, TARGET)], found[(followup, MET)]) == (
        "逐步升高", "≥ 90", "未达标")
    assert found[(followup, UNIT)] == "%" and found[(followup, STATUS)] == "已完成"

    pain = row_of(found, NAME, "疼痛评估规范率")
    assert (found[(pain, VALUE)], found[(pain, NUMERATOR)], found[(pain, DENOMINATOR)]) == (90.0, 90, 100)
    assert (found[(pain, TARGET)], found[(pain, MET)]) == ("≥ 80", "达标")
    assert found[(pain, STATUS)] == "部分缺失：已审核 10/12 个月（1 条待审核，未计入）"

    twin = {c["code"]: c for row in json.loads(form.snapshot)["rows"] for c in row["codes"]}
    assert twin["pain_assessment_rate"]["status"] == "partial"
    assert (twin["pain_assessment_rate"]["months_approved"], twin["pain_assessment_rate"]["pending"]) == (10, 1)
    assert twin["followup_rate_level4"]["target"] == {"comparison": "ge", "value": 90.0, "text": "逐步升高",
                                                      "source": None, "set_by": "hospital"}
    assert twin["followup_rate_level4"]["met"] is False and twin["followup_rate_level4"]["months_approved"] is None


def test_status_says_why_a_value_is_missing(app, hospital, generate):
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorSetup

    def status():
        form = generate(draft=True)
        found = cells(form.xlsx)
        return found[(row_of(found, NAME, "疼痛评估规范率"), STATUS)], found[(row_of(found, NAME, "四级手术患者有效随访率"),
                                                                          STATUS)]

    assert status() == ("缺失：未上报", "本期无病例（分母为0）")
    report(hospital, "pain_assessment_rate", date(2026, 3, 1), "submitted", 5, 10)
    report(hospital, "pain_assessment_rate", date(2026, 4, 1), "returned", 5, 10)
    # Awaiting approval counts the submitted value only: the returned one is owed by its department.
    assert status()[0] == "缺失：未审核通过（1 条待审核，未计入）"
    db.session.add(IndicatorSetup(code="pain_assessment_rate", method="not_applicable", reason="本院不设疼痛门诊",
                                  updated_at=JANUARY, updated_by="user:1"))
    db.session.commit()
    assert status()[0] == "不适用：本院不设疼痛门诊"


def test_a_row_holding_two_indicators_gets_a_line_for_each(app, hospital, generate, monkeypatch):
    from qcflow.indicators import catalogue

    row = catalogue.annex("henan")[0]
    two = catalogue.AnnexRow("henan", 1, row.dimension, row.dimension_en, "两项合并的指标", "Two in one", 1,
                             ("followup_rate_level4", "pain_assessment_rate"), "≥90%", "")
    bare = catalogue.AnnexRow("henan", 2, row.dimension, row.dimension_en, "尚未对应指标的一行", "", 2, (), "", "")
    monkeypatch.setattr(catalogue, "annex", lambda plan=None: (two, bare))
    form = generate()
    found = cells(form.xlsx)
    first = row_of(found, WORDING, "两项合并的指标")
    assert (found[(first, NAME)], found[(first + 1, NAME)]) == ("四级手术患者有效随访率", "疼痛评估规范率")
    assert (first + 1, WORDING) not in found  # merged: the wording once, over both lines
    assert f"C{first + 1}:C{first + 2}" in sheet_xml(form.xlsx)
    # A row without an indicator code keeps its place and wording, with empty cells.
    assert (found[(first + 2, SEQ)], found[(first + 2, WORDING)]) == (2, "尚未对应指标的一行")
    assert (first + 2, VALUE) not in found and (first + 2, NAME) not in found
    assert json.loads(form.snapshot)["rows"][1]["codes"] == []


def test_quarterly_report_shows_the_three_months_and_the_quarter(app, hospital, reference_month, generate):
    from qcflow.indicators import queries

    form = generate("quarterly", 2026, 1, now=APRIL)
    found = cells(form.xlsx)
    header = row_of(found, SEQ, "序号")
    titles = [found[(header, col)] for col in range(VALUE, VALUE + 4)]
    assert titles == ["1月", "2月", "3月", "季度值"]
    line = row_of(found, NAME, "四级手术患者有效随访率")
    march = queries.catalogue_values(date(2026, 3, 1), date(2026, 3, 31), now=APRIL)["followup_rate_level4"]
    quarter = queries.catalogue_values(date(2026, 1, 1), date(2026, 3, 31), now=APRIL)["followup_rate_level4"]
    assert found[(line, VALUE)] == "—" and found[(line, VALUE + 1)] == "—"  # no call closed in January, February
    assert found[(line, VALUE + 2)] == pytest.approx(march.value, abs=1e-4)
    assert found[(line, VALUE + 3)] == pytest.approx(quarter.value, abs=1e-4)
    assert "2026年第1季度" in found[(0, 0)]
    twin = json.loads(form.snapshot)
    assert twin["period"] == {"year": 2026, "quarter": 1, "start": "2026-01-01", "end": "2026-03-31",
                              "months": ["2026-01", "2026-02", "2026-03"]}


def test_the_archive_never_changes_and_generating_again_makes_revision_2(app, hospital, reference_month, generate,
                                                                         clients):
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorForm

    first = generate()
    xlsx, twin, first_id = first.xlsx, first.snapshot, first.id
    for month in range(1, 13):  # new data after the form: all of 2026 approved
        report(hospital, "pain_assessment_rate", date(2026, month, 1), "approved", 8, 10)
    db.session.commit()
    client = clients("quality")
    assert client.get(f"/indicators/forms/{first_id}.xlsx").data == xlsx
    assert client.get(f"/indicators/forms/{first_id}.json").data == twin.encode()
    second = generate()
    assert (first.revision, second.revision) == (1, 2)
    assert second.xlsx != xlsx and "已审核" not in json.loads(second.snapshot)["rows"][0]["codes"][0]["reason"]
    db.session.expire_all()
    stored = db.session.get(IndicatorForm, first_id)
    assert (stored.xlsx, stored.snapshot) == (xlsx, twin)
    assert hashlib.sha256(stored.xlsx).hexdigest() == stored.xlsx_sha256
    quarterly = generate("quarterly", 2026, 4)
    assert quarterly.revision == 1  # revisions count per plan, kind and period


def test_json_twin_is_canonical_versioned_and_renders_the_same_xlsx(app, hospital, reference_month, generate):
    from qcflow.indicators import forms

    form = generate()
    twin = json.loads(form.snapshot)
    assert forms.canonical(twin) == form.snapshot  # sorted keys, one serialisation
    assert hashlib.sha256(form.snapshot.encode()).hexdigest() == form.json_sha256
    assert twin["xlsx_sha256"] == form.xlsx_sha256 == hashlib.sha256(form.xlsx).hexdigest()
    assert twin["schema"] == "qcflow.indicator-form/1" and twin["kind"] == "annual" and twin["revision"] == 1
    assert twin["period"]["start"] == "2026-01-01" and twin["generated_at"] == "2027-01-05T02:00:00+00:00"
    assert twin["hospital"] == {"name": "", "level": "tertiary"} and twin["plan"]["key"] == "henan"
    [line] = [line for row in twin["rows"] for line in row["codes"] if line["code"] == "followup_rate_level4"]
    assert isinstance(line["value"], float) and isinstance(line["numerator"], int)
    assert set(line) == {"code", "name", "name_en", "unit", "method", "value", "numerator", "denominator", "target",
                         "met", "status", "reason", "pending", "months_approved", "months"}
    # The XLSX is a function of the snapshot alone: rendering the twin again gives the archived bytes.
    assert forms.render_xlsx({k: v for k, v in twin.items() if k != "xlsx_sha256"}) == form.xlsx
    # The same data at the same moment give the same bytes.
    draft = generate(draft=True)
    again = generate(draft=True)
    assert (draft.snapshot, draft.xlsx) == (again.snapshot, again.xlsx)


def test_header_block_and_print_setup(app, hospital, generate):
    app.config["HOSPITAL_NAME"] = "示例市人民医院"
    form = generate()
    found = cells(form.xlsx)
    header = "\n".join(str(found.get((row, 0), "")) for row in range(5))
    assert "医疗质量监测指标数据填报表（2026年）" in header and "医院名称：示例市人民医院" in header
    assert "医院等级：三级" in header and "河南省全面提升医疗质量行动实施方案" in header
    assert "统计期间：2026-01-01 至 2026-12-31" in header and "版本：第 1 版" in header
    assert f"生成人：{hospital['quality'].display_name}" in header
    xml = sheet_xml(form.xlsx)
    assert 'orientation="landscape"' in xml and 'paperSize="9"' in xml and 'state="frozen"' in xml
    assert "Print_Titles" in sheet_xml(form.xlsx, "xl/workbook.xml")


@pytest.mark.parametrize("kind, year, quarter, now, field, message", [
    ("annual", 2026, None, sh(2026, 12, 31, 23, 0), "year", "Not over yet"),
    ("annual", 2026, None, sh(2027, 1, 1, 23, 59), "year", "Not over yet"),  # 1 January: not settled yet
    ("annual", 2027, None, JANUARY, "year", "Not over yet"),
    ("annual", 2028, None, JANUARY, "year", "in the future"),
    ("quarterly", 2026, 2, sh(2026, 7, 1, 12, 0), "quarter", "Not over yet"),
    ("quarterly", 2026, 5, JANUARY, "quarter", "Out of range"),
    ("quarterly", 2026, None, JANUARY, "quarter", "Choose the quarter"),
    ("quarterly", 2026, 0, JANUARY, "quarter", "Out of range"),
    ("annual", 2026, 1, JANUARY, "quarter", "no quarter"),
    ("monthly", 2026, None, JANUARY, "kind", "Choose one of"),
])
def test_periods_that_are_refused(app, hospital, actor_of, kind, year, quarter, now, field, message):
    from qcflow.core.errors import Unprocessable
    from qcflow.extensions import db
    from qcflow.indicators import forms
    from qcflow.indicators.models import IndicatorForm

    from flask_babel import force_locale

    with pytest.raises(Unprocessable) as refused, force_locale("en"):
        forms.generate_form("henan", kind, year, quarter, actor=actor_of("quality"), now=now)
    assert list(refused.value.errors) == [field] and message in refused.value.errors[field][0]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IndicatorForm)) == 0


def test_a_period_is_final_from_the_day_after_its_last_day(app, hospital, generate):
    assert generate(now=sh(2027, 1, 2, 0, 0)).revision == 1
    assert generate("quarterly", 2026, 1, now=sh(2026, 4, 2, 0, 0)).revision == 1


def test_a_draft_covers_a_running_period_and_archives_nothing(app, hospital, generate):
    from qcflow.core.errors import Unprocessable
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorForm

    audits = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    draft = generate(year=2027, draft=True)
    assert draft.id is None and json.loads(draft.snapshot)["draft"] is True
    assert "草稿" in cells(draft.xlsx)[(3, 0)]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IndicatorForm)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == audits
    with pytest.raises(Unprocessable):
        generate(year=2028, draft=True)  # not begun: not even a draft


def test_generating_is_audited(app, hospital, generate):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    form = generate()
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "indicator_form.generate"))
    assert (entry.object_type, entry.object_id) == ("indicator_form", str(form.id))
    assert entry.actor == f"user:{hospital['quality'].id}"
    after = json.loads(entry.detail)["after"]
    assert after["xlsx_sha256"] == form.xlsx_sha256 and after["revision"] == 1 and after["end"] == "2026-12-31"
