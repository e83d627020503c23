"""The catalogue's pages: the plan's annex in its own order and words, the setup forms of the quality office, a
department's own indicators and targets; Chinese and English with no raw code visible."""
from __future__ import annotations

import re

import pytest

from tests.conftest import csrf_from
from tests.core.test_page_walk import VisibleText, findings_in

REPORTED, NOT_APPLICABLE, COMPUTED = "pain_assessment_rate", "qc_centre_setup_rate", "followup_rate_level4"
NAMES = frozenset({"nurse", "head", "cardhead", "quality", "admin", "doctor"})


def visible(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return parser.text


def read(client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:800]
    return response.get_data(as_text=True)


def assert_readable(html: str, language: str) -> str:
    text = visible(html)
    assert findings_in(text, language, NAMES) == [], findings_in(text, language, NAMES)
    return text


@pytest.fixture
def henan(app):
    """The Henan annex's rows as the catalogue's data has them (the installation's plan in the tests)."""
    from qcflow.indicators import catalogue

    with app.app_context():
        return catalogue.annex("henan")


@pytest.mark.parametrize("who", ["head", "quality", "admin"])
@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_catalogue_page_reads_in_both_languages(clients, henan, who, language):
    html = read(clients(who), f"/indicators/catalogue?lang={language}")
    text = assert_readable(html, language)
    first = henan[0]
    assert first.dimension_label(language) in text and first.label(language) in text
    if language == "zh":
        assert "指标目录" in text and "按月填报" in text and "不适用" in text and "系统自动计算" in text
        pain = next(row for row in henan if REPORTED in row.codes)
        assert pain.responsible in visible(html.split(f'id="ind-{REPORTED}"', 1)[1].split("</tr>", 1)[0])
    else:
        assert "Indicator catalogue" in text and "Reported monthly" in text and "Not applicable" in text
    # The annex in its own order, each row's first indicator where the annex puts it.
    positions = [html.index(f'id="ind-{row.codes[0]}"') for row in henan]
    assert positions == sorted(positions)
    assert (f'action="/indicators/catalogue/{REPORTED}"' in html) == (who != "head")
    assert f'href="/indicators/{COMPUTED}"' in html and f'href="/indicators/{NOT_APPLICABLE}"' not in html


def test_targets_say_where_they_come_from(clients):
    html = read(clients("quality"), "/indicators/catalogue?plan=yubei&year=2026")
    text = assert_readable(html, "zh")
    row = visible(html.split(f'id="ind-{COMPUTED}"', 1)[1].split("</tr>", 1)[0])
    assert "≥ 90.00%" in row and "本院自定，自 2025 年起" in row  # the migration seeded the hospital's own
    assert "只读" in text and f'action="/indicators/catalogue/{REPORTED}"' not in html  # another plan: read only


@pytest.mark.parametrize("who", ["nurse", "doctor"])
def test_nurses_and_clinicians_do_not_open_the_catalogue(clients, who):
    for path in ("/indicators/catalogue", f"/indicators/catalogue/{REPORTED}", "/indicators/catalogue/local"):
        assert clients(who).get(path).status_code == 403


def test_filters_and_a_refused_filter(clients, hospital):
    quality = clients("quality")
    only = read(quality, "/indicators/catalogue?method=not_applicable")
    assert f'id="ind-{NOT_APPLICABLE}"' in only and f'id="ind-{REPORTED}"' not in only
    found = read(quality, "/indicators/catalogue?q=%E7%96%BC%E7%97%9B")  # 疼痛
    assert f'id="ind-{REPORTED}"' in found and f'id="ind-{COMPUTED}"' not in found
    department = read(quality, f"/indicators/catalogue?department={hospital['surgery'].id}")
    assert 'id="ind-' not in department
    bad = read(quality, "/indicators/catalogue?plan=hubei", 422)
    assert "请选择" in visible(bad) and f'id="ind-{REPORTED}"' in bad  # the default view, with why


def setup_form(client, code, **fields):
    token = csrf_from(client, f"/indicators/catalogue/{code}")
    return client.post(f"/indicators/catalogue/{code}", data={"csrf_token": token, **fields})


def test_the_quality_office_sets_an_indicator_up_on_the_page(clients, hospital):
    quality = clients("quality")
    saved = setup_form(quality, REPORTED, method="reported", department=str(hospital["surgery"].id), version="")
    assert saved.status_code == 302 and saved.headers["Location"].endswith(f"#ind-{REPORTED}")
    page = read(quality, saved.headers["Location"])
    assert "已保存" in page and "普通外科" in visible(page.split(f'id="ind-{REPORTED}"', 1)[1].split("</tr>")[0])
    stale = setup_form(quality, REPORTED, method="not_applicable", reason="本院无病房", version="")
    assert stale.status_code == 409 and "刷新" in visible(stale.get_data(as_text=True))
    no_reason = setup_form(quality, REPORTED, method="not_applicable", reason="", version="1")
    assert no_reason.status_code == 422 and "不适用的原因" in visible(no_reason.get_data(as_text=True))
    assert setup_form(clients("admin"), REPORTED, method="reported", version="1").status_code == 302
    detail = read(quality, f"/indicators/catalogue/{REPORTED}")
    text = assert_readable(detail, "zh")
    assert "更改数据来源" in text and "指标恢复为目录默认设置" in text
    assert setup_form(quality, "no_such_indicator", method="reported", version="").status_code == 404


def test_a_department_head_cannot_set_an_indicator_up(clients):
    head = clients("head")
    token = csrf_from(head, "/indicators/catalogue")
    assert head.post(f"/indicators/catalogue/{REPORTED}", data={"csrf_token": token, "method": "reported",
                                                                "version": ""}).status_code == 403


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_detail_page(app, clients, language):
    from qcflow.indicators import catalogue
    from qcflow.indicators.definitions import PLANS

    html = read(clients("head"), f"/indicators/catalogue/{COMPUTED}?lang={language}")
    text = assert_readable(html, language)
    with app.test_request_context(f"/?lang={language}"):
        rows = catalogue.annex_rows_of(COMPUTED)
        names = {str(PLANS[row.plan].name) for row in rows}
    assert rows and all(str(row.line) in text and row.label(language) in text for row in rows)
    assert all(name in text for name in names)
    if language == "zh":
        assert "本院及各科室目标值" in text and "全院" in text
    else:
        assert "Targets of the plans" in text and "The hospital" in text
    assert clients("head").get("/indicators/catalogue/no_such_indicator").status_code == 404


def post_local(client, department_id, **fields):
    token = csrf_from(client, f"/indicators/catalogue/local?department={department_id}")
    return client.post("/indicators/catalogue/local", data={"csrf_token": token, "department": str(department_id),
                                                            **fields})


def test_a_head_keeps_the_departments_own_indicators_and_targets(clients, hospital):
    head, gs = clients("head"), hospital["surgery"].id
    empty = read(head, "/indicators/catalogue/local")
    assert_readable(empty, "zh")
    assert "本科室尚无关键指标" in empty and "普通外科" in empty
    made = post_local(head, gs, action="create", name="术后镇痛满意度", name_en="", unit="percent",
                      direction="higher", definition="满意例数/同期调查例数")
    assert made.status_code == 302
    page = read(head, made.headers["Location"])
    assert_readable(page, "zh")
    assert "已新建指标" in page and 'id="local-local_gs_1"' in page
    assert post_local(head, gs, action="create", name="", unit="percent", direction="higher",
                      definition="x").status_code == 422
    target = post_local(head, gs, action="target", code="local_gs_1", level="tertiary", year="2026",
                        comparison="ge", value="85")
    assert target.status_code == 302
    again = post_local(head, gs, action="target", code="local_gs_1", level="tertiary", year="2026",
                       comparison="ge", value="88")
    assert again.status_code == 409
    edited = post_local(head, gs, action="update", code="local_gs_1", version="1", name="术后镇痛满意率",
                        name_en="Analgesia satisfaction", unit="percent", direction="higher", definition="满意/调查")
    assert edited.status_code == 302
    off = post_local(head, gs, action="deactivate", code="local_gs_1", version="2")
    assert off.status_code == 302
    page = read(head, "/indicators/catalogue/local?lang=en")
    assert_readable(page, "en")
    assert "Switch on again" in page and "Analgesia satisfaction" in page
    catalogue = read(head, "/indicators/catalogue")
    assert "local_gs_1" not in catalogue  # switched off: not in the catalogue


def test_the_local_page_keeps_to_the_heads_department(clients, hospital):
    head = clients("head")
    assert head.get(f"/indicators/catalogue/local?department={hospital['cardio'].id}").status_code == 404
    refused = post_local(clients("card_head"), hospital["cardio"].id, action="create", name="别科指标", unit="count",
                         direction="higher", definition="例数")
    assert refused.status_code == 302
    code = "local_card_1"
    token = csrf_from(head, "/indicators/catalogue/local")
    other = head.post("/indicators/catalogue/local", data={
        "csrf_token": token, "action": "target", "code": code, "level": "tertiary", "year": "2026",
        "comparison": "ge", "value": "3"})
    assert other.status_code == 403  # the page keeps to the head's department; the code is another's
    listed = read(head, "/indicators/catalogue")
    assert f'id="ind-{code}"' in listed and f"edit={code}" not in listed  # seen, not editable


def test_the_quality_office_chooses_the_department(clients, hospital):
    quality, card = clients("quality"), hospital["cardio"].id
    page = read(quality, f"/indicators/catalogue/local?department={card}")
    assert re.search(rf'<option value="{card}" selected>', page)
    assert post_local(quality, card, action="create", name="心内科关键指标", unit="minutes", direction="lower",
                      definition="平均时间").status_code == 302
    listed = read(quality, "/indicators/catalogue?lang=en")
    assert 'id="ind-local_card_1"' in listed and "edit=local_card_1" in listed
