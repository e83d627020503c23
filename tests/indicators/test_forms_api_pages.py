"""The forms over the API and on /indicators/forms: who may generate and download, bad input, the archive list,
the draft preview, and pages in Chinese and English without raw codes."""
from __future__ import annotations

import hashlib
import json

import pytest

from tests.core.test_page_walk import VisibleText, findings_in


def last_year():
    from qcflow.core.time import today

    return today().year - 1


def post(client, headers, **body):
    return client.post("/api/v1/indicators/forms", json=body, headers=headers)


def test_generate_list_and_download_over_the_api(clients, tokens):
    client, headers = clients(None), tokens("quality")
    created = post(client, headers, kind="annual", year=last_year())
    assert created.status_code == 201, created.get_json()
    meta = created.get_json()
    assert (meta["kind"], meta["year"], meta["quarter"], meta["revision"], meta["draft"]) == (
        "annual", last_year(), None, 1, False)
    assert meta["period_start"] == f"{last_year()}-01-01" and meta["snapshot"] is None
    xlsx = client.get(meta["xlsx_url"], headers=headers)
    assert xlsx.status_code == 200 and xlsx.mimetype.endswith("spreadsheetml.sheet")
    assert hashlib.sha256(xlsx.data).hexdigest() == meta["xlsx_sha256"]
    assert f"indicator-form-henan-annual-{last_year()}-r1.xlsx" in xlsx.headers["Content-Disposition"]
    twin = client.get(meta["json_url"], headers=headers)
    assert twin.mimetype == "application/json" and hashlib.sha256(twin.data).hexdigest() == meta["json_sha256"]
    assert json.loads(twin.data)["xlsx_sha256"] == meta["xlsx_sha256"]
    assert client.get(f"/api/v1/indicators/forms/{meta['id']}", headers=headers).get_json() == meta

    again = post(client, headers, kind="annual", year=last_year()).get_json()
    quarter = post(client, headers, kind="quarterly", year=last_year(), quarter=4).get_json()
    assert (again["revision"], quarter["revision"], quarter["quarter"]) == (2, 1, 4)
    listed = client.get("/api/v1/indicators/forms?limit=2", headers=headers).get_json()
    assert [item["id"] for item in listed["items"]] == [quarter["id"], again["id"]]
    rest = client.get(f"/api/v1/indicators/forms?limit=2&cursor={listed['next_cursor']}", headers=headers).get_json()
    assert [item["id"] for item in rest["items"]] == [meta["id"]] and rest["next_cursor"] is None
    annual = client.get("/api/v1/indicators/forms?kind=annual", headers=headers).get_json()
    assert [item["revision"] for item in annual["items"]] == [2, 1]


def test_a_draft_returns_its_snapshot_and_archives_nothing(clients, tokens):
    from qcflow.core.time import today

    client, headers = clients(None), tokens("quality")
    draft = post(client, headers, kind="annual", year=today().year, draft=True)
    assert draft.status_code == 200
    body = draft.get_json()
    assert body["id"] is None and body["revision"] is None and body["draft"] is True
    assert body["xlsx_url"] is None and body["snapshot"]["schema"] == "qcflow.indicator-form/1"
    assert client.get("/api/v1/indicators/forms", headers=headers).get_json()["items"] == []


@pytest.mark.parametrize("body, field", [
    ({"kind": "monthly", "year": 2025}, "kind"),
    ({"kind": "quarterly", "year": 2025, "quarter": 5}, "quarter"),
    ({"kind": "quarterly", "year": 2025, "quarter": 0}, "quarter"),
    ({"kind": "quarterly", "year": 2025}, "quarter"),
    ({"kind": "annual", "year": 2025, "quarter": 2}, "quarter"),
    ({"kind": "annual", "year": 1999}, "year"),
    ({"kind": "annual"}, "year"),
    ({"kind": "annual", "year": 2025, "plan": "yubei"}, "plan"),
])
def test_bad_input_is_refused_with_its_field(clients, tokens, body, field):
    response = post(clients(None), tokens("quality"), **body)
    assert response.status_code == 422 and field in response.get_json()["errors"], response.get_json()


def test_future_and_unfinished_periods_are_refused_with_their_field(clients, tokens):
    from qcflow.core.time import today

    client, headers = clients(None), tokens("quality")
    this_year = today().year
    running = post(client, headers, kind="annual", year=this_year)
    assert running.status_code == 422 and "year" in running.get_json()["errors"]
    future = post(client, headers, kind="annual", year=this_year + 1, draft=True)
    assert future.status_code == 422 and "year" in future.get_json()["errors"]
    quarter = (today().month + 2) // 3
    current = post(client, headers, kind="quarterly", year=this_year, quarter=quarter)
    assert current.status_code == 422 and "quarter" in current.get_json()["errors"]
    assert client.get("/api/v1/indicators/forms", headers=headers).get_json()["items"] == []


@pytest.mark.parametrize("who", ["head", "nurse", "admin", "doctor"])
def test_only_the_quality_office_generates_and_downloads(clients, tokens, who):
    quality = tokens("quality")
    made = post(clients(None), quality, kind="annual", year=last_year()).get_json()
    other = tokens(who)
    client = clients(None)
    assert post(client, other, kind="annual", year=last_year()).status_code == 403
    for path in ("/api/v1/indicators/forms", f"/api/v1/indicators/forms/{made['id']}", made["xlsx_url"],
                 made["json_url"]):
        assert client.get(path, headers=other).status_code == 403
    for path in ("/indicators/forms", f"/indicators/forms/{made['id']}.xlsx"):
        assert clients(who).get(path).status_code == 403
    assert client.get("/api/v1/indicators/forms").status_code == 401


def test_unknown_form_is_404(clients, tokens):
    for path in ("/api/v1/indicators/forms/999", "/api/v1/indicators/forms/999.xlsx"):
        assert clients(None).get(path, headers=tokens("quality")).status_code == 404
    assert clients("quality").get("/indicators/forms/999.json").status_code == 404


def visible(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return parser.text


def test_page_generates_archives_and_lists_in_chinese(clients, hospital):
    from tests.conftest import csrf_from

    client = clients("quality")
    page = client.get("/indicators/forms")
    assert page.status_code == 200
    text = visible(page.get_data(as_text=True))
    assert "指标填报表" in text and "河南省全面提升医疗质量行动实施方案" in text
    assert findings_in(text, "zh", frozenset({"quality"})) == []
    token = csrf_from(client, "/indicators/forms")
    done = client.post("/indicators/forms", data={"csrf_token": token, "kind": "annual", "year": str(last_year()),
                                                  "quarter": "2"})  # a quarter left in its box for an annual form
    assert done.status_code == 302
    listed = client.get("/indicators/forms").get_data(as_text=True)
    assert f"已生成并存档：年度监测指标填报表 {last_year()}，第 1 版。" in listed
    assert "/indicators/forms/1.xlsx" in listed and "/indicators/forms/1.json" in listed
    assert findings_in(visible(listed), "zh", frozenset({"quality"})) == []
    assert client.get("/indicators/forms/1.xlsx").data[:2] == b"PK"
    english = visible(client.get("/indicators/forms?lang=en").get_data(as_text=True))
    assert "Annual monitoring form" in english and findings_in(english, "en") == []


def test_page_draft_preview_and_download(clients, hospital):
    from qcflow.core.time import today
    from tests.conftest import csrf_from

    client = clients("quality")
    token = csrf_from(client, "/indicators/forms")
    preview = client.post("/indicators/forms", data={"csrf_token": token, "kind": "annual",
                                                     "year": str(today().year), "draft": "1"})
    assert preview.status_code == 200
    html = preview.get_data(as_text=True)
    assert 'id="preview"' in html and "四级手术患者随访率" in html
    assert findings_in(visible(html), "zh", frozenset({"quality"})) == []
    download = client.post("/indicators/forms", data={"csrf_token": token, "kind": "quarterly",
                                                      "year": str(today().year), "quarter": "1", "download": "1"})
    assert download.status_code == 200 and download.data[:2] == b"PK"
    assert "draft.xlsx" in download.headers["Content-Disposition"]
    assert "/indicators/forms/1.xlsx" not in client.get("/indicators/forms").get_data(as_text=True)


def test_page_refuses_bad_input_with_its_message(clients, hospital):
    from qcflow.core.time import today
    from tests.conftest import csrf_from

    client = clients("quality")
    token = csrf_from(client, "/indicators/forms")
    running = client.post("/indicators/forms", data={"csrf_token": token, "kind": "annual", "year": str(today().year)})
    assert running.status_code == 422 and 'role="alert"' in running.get_data(as_text=True)
    quarter = client.post("/indicators/forms", data={"csrf_token": token, "kind": "quarterly",
                                                     "year": str(last_year())})
    assert quarter.status_code == 422
    assert client.get("/indicators/forms?kind=weekly").status_code == 422  # a bad filter: the page, and why
    bad = client.post("/indicators/forms", data={"csrf_token": token, "kind": "weekly", "year": "abc"})
    assert bad.status_code == 422
    text = visible(bad.get_data(as_text=True))
    assert "年度监测指标填报表、季度报告" in text  # the kinds by their names, not their codes
    assert findings_in(text, "zh", frozenset({"quality", "weekly"})) == []  # what was sent is echoed


def test_two_generations_racing_for_one_revision_give_a_409(clients, tokens, monkeypatch):
    """Both read the same next revision: the unique key lets one in and answers the other 409."""
    from qcflow.indicators import forms

    client, headers = clients(None), tokens("quality")
    assert post(client, headers, kind="annual", year=last_year()).status_code == 201
    monkeypatch.setattr(forms, "next_revision", lambda plan, period: 1)
    assert post(client, headers, kind="annual", year=last_year()).status_code == 409
    assert len(client.get("/api/v1/indicators/forms", headers=headers).get_json()["items"]) == 1


def test_page_lists_what_is_still_missing_for_last_year(clients, hospital):
    from datetime import date

    from qcflow.extensions import db
    from tests.indicators.test_forms import report

    for month in range(1, 12):
        report(hospital, "pain_assessment_rate", date(last_year(), month, 1), "approved", 9, 10)
    report(hospital, "pain_assessment_rate", date(last_year(), 12, 1), "submitted", 9, 10)
    db.session.commit()
    html = clients("quality").get("/indicators/forms").get_data(as_text=True)
    missing = visible(html.split('id="missing"')[1].split("</section>")[0])
    assert "疼痛评估规范率：1 个月未审核通过（12 月） · 1 条待审核" in missing
    assert "随访率" not in missing  # computed: never missing
    # The full catalogue's other reported indicators: the quality office's until a department is named, grouped
    # under it with their count, and one short line for a year with no month approved.
    from qcflow.indicators import catalogue, forms

    owed = forms.missing_values(catalogue.plan(), last_year())
    assert len(owed) > 1 and {m.department_id for m in owed} == {None}
    assert f"质控办\n{len(owed)} 项指标" in missing and missing.count("全年无已审核的月份") == len(owed) - 1
    assert "12 个月未审核通过" not in missing
