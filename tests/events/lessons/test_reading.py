"""Who reads what: the library for every member of staff, unpublished lessons for the quality office only, the
case link only for a reader who may open the case; the pages and the API wired to the services; the bulletin."""
from datetime import date, datetime, timezone

import pytest

from tests.events.lessons.conftest import TEXT


def test_a_nurse_reads_a_published_lesson_not_a_draft(clients, write_lesson):
    published, draft = write_lesson("published"), write_lesson("draft", title="草稿标题")
    nurse = clients("nurse")
    page = nurse.get(f"/lessons/{published.id}")
    assert page.status_code == 200 and TEXT["what_changed"] in page.get_data(as_text=True)
    assert nurse.get(f"/lessons/{draft.id}").status_code == 404
    assert nurse.get(f"/api/v1/lessons/{draft.id}").status_code == 404
    assert "草稿标题" not in nurse.get("/lessons").get_data(as_text=True)
    assert clients("quality").get(f"/lessons/{draft.id}").status_code == 200


def test_no_case_link_for_a_reader_who_may_not_open_the_case(clients, write_lesson):
    lesson = write_lesson("published")
    reference = f"AE-2026-"
    for who in ("nurse", "clinician", "other_head"):  # the case is general surgery's
        page = clients(who).get(f"/lessons/{lesson.id}").get_data(as_text=True)
        assert reference not in page and f"/events/{lesson.event_id}" not in page, who
        body = clients(who).get(f"/api/v1/lessons/{lesson.id}").json
        assert body["event_id"] is None and body["case_reference"] is None and "scrub_findings" not in body
    for who in ("quality", "head"):
        page = clients(who).get(f"/lessons/{lesson.id}").get_data(as_text=True)
        assert f'href="/events/{lesson.event_id}"' in page, who
        assert clients(who).get(f"/api/v1/lessons/{lesson.id}").json["event_id"] == lesson.event_id


@pytest.mark.parametrize("who, status", [("nurse", 200), ("clinician", 200), ("head", 200), ("quality", 200),
                                         ("admin", 403)])
def test_who_reads_the_library(clients, who, status):
    assert clients(who).get("/lessons").status_code == status
    assert clients(who).get("/api/v1/lessons").status_code == status


def test_the_library_page_searches_in_chinese_and_refuses_a_search_too_long(clients, write_lesson):
    write_lesson("published", title="术后跌倒", what_happened="患者术后首次下床跌倒。")
    write_lesson("published")
    nurse = clients("nurse")
    page = nurse.get("/lessons?q=跌倒").get_data(as_text=True)
    assert "术后跌倒" in page and TEXT["title"] not in page
    refused = nurse.get("/lessons?q=" + "跌倒" * 80)
    assert refused.status_code == 422 and "100" in refused.get_data(as_text=True)
    assert nurse.get("/api/v1/lessons?q=" + "跌倒" * 80).status_code == 422
    assert [i["title"] for i in nurse.get("/api/v1/lessons?q=%E8%B7%8C%E5%80%92").json["items"]] == ["术后跌倒"]


def test_the_review_queue_is_the_quality_offices(clients, write_lesson):
    write_lesson("in_review", title="待审核的案例")
    assert "待审核的案例" in clients("quality").get("/lessons/review").get_data(as_text=True)
    assert clients("head").get("/lessons/review").status_code == 403


def test_api_writes_updates_and_publishes_with_four_eyes(clients, create_case, hospital):
    quality, quality2 = clients("quality"), clients("quality2")
    q, q2 = quality.csrf, quality2.csrf
    event = create_case()
    open_case = create_case(state="investigating")
    assert quality.post(f"/api/v1/events/{open_case.id}/lesson", headers=q, json=TEXT).status_code == 409
    assert clients("head").post(f"/api/v1/events/{event.id}/lesson", headers=clients("head").csrf,
                                json=TEXT).status_code == 403
    made = quality.post(f"/api/v1/events/{event.id}/lesson", headers=q, json={**TEXT, "why": "王主任说人手少。"})
    assert made.status_code == 201, made.json
    body = made.json
    assert body["scrub_findings"] == [{"field": "why", "found": "王主任", "replacement": "[姓名]"}]
    again = quality.post(f"/api/v1/events/{event.id}/lesson", headers=q, json=TEXT)
    assert again.status_code == 409 and again.json["lesson_id"] == body["id"]
    path = f"/api/v1/lessons/{body['id']}"
    refused = quality.post(f"{path}/transitions", headers=q, json={"action": "submit_review", "version": body["version"]})
    assert refused.status_code == 409 and "王主任" in refused.json["message"]
    stale = quality.patch(path, headers=q, json={"why": "人手少。", "version": body["version"] - 1})
    assert stale.status_code == 409
    changed = quality.patch(path, headers=q, json={"why": "人手少。", "version": body["version"]})
    assert changed.status_code == 200 and changed.json["scrub_findings"] == []
    sent = quality.post(f"{path}/transitions", headers=q, json={"action": "submit_review",
                                                                "version": changed.json["version"]})
    assert sent.status_code == 200 and sent.json["state"] == "in_review"
    mine = quality.post(f"{path}/transitions", headers=q, json={"action": "publish", "checked": True,
                                                                "version": sent.json["version"]})
    assert mine.status_code == 403
    unchecked = quality2.post(f"{path}/transitions", headers=q2, json={"action": "publish",
                                                                       "version": sent.json["version"]})
    assert unchecked.status_code == 422
    published = quality2.post(f"{path}/transitions", headers=q2, json={"action": "publish", "checked": True,
                                                                       "version": sent.json["version"]})
    assert published.status_code == 200 and published.json["state"] == "published"
    assert clients("nurse").get(path).json["title"] == TEXT["title"]


def test_pages_write_a_lesson_from_the_closed_case(clients, create_case):
    quality = clients("quality")
    token = quality.csrf["X-CSRFToken"]
    event, open_case = create_case(), create_case(state="investigating")
    assert 'id="write-lesson"' in quality.get(f"/events/{event.id}").get_data(as_text=True)
    assert 'id="write-lesson"' not in quality.get(f"/events/{open_case.id}").get_data(as_text=True)
    assert 'id="write-lesson"' not in clients("head").get(f"/events/{event.id}").get_data(as_text=True)
    form = {**TEXT, "what_happened": "张建国配药时多抽 4 单位。", "csrf_token": token, "then": "submit_review"}
    saved = quality.post(f"/events/{event.id}/lesson", data=form)
    assert saved.status_code == 302  # kept as a draft: the scrubber found a name
    page = quality.get(f"/events/{event.id}/lesson").get_data(as_text=True)
    assert 'id="findings"' in page and "张建国" in page and "[姓名]配药时多抽 4 单位。" in page
    from qcflow.events.lessons.models import Lesson
    from qcflow.extensions import db

    with quality.application.app_context():
        lesson = db.session.query(Lesson).filter_by(event_id=event.id).one()
        version, lesson_id = lesson.version, lesson.id
    fixed = quality.post(f"/events/{event.id}/lesson", data={**form, "what_happened": "配药时多抽 4 单位。",
                                                               "version": version})
    assert fixed.status_code == 302 and fixed.headers["Location"].endswith(f"/lessons/{lesson_id}")
    stale = quality.post(f"/events/{event.id}/lesson", data={**form, "version": version})
    assert stale.status_code == 302  # in review now: the form goes to the lesson page
    closed_first = quality.get(f"/events/{open_case.id}/lesson").get_data(as_text=True)
    assert 'id="not-closed"' in closed_first and 'id="lesson-form"' not in closed_first
    assert quality.post(f"/events/{open_case.id}/lesson", data=form).status_code == 409
    assert clients("nurse").get(f"/events/{event.id}/lesson").status_code == 403


def bulletin_html(app, month, now):
    from flask import current_app
    from flask_babel import force_locale

    from qcflow.reports import bulletin

    with app.test_request_context("/"), force_locale("zh"):
        return current_app.jinja_env.get_template("reports/bulletin.html").render(**bulletin.context(month, now))


def test_the_bulletin_carries_the_lessons_published_in_its_month(app, write_lesson):
    feb = datetime(2026, 2, 10, 2, tzinfo=timezone.utc)
    write_lesson("published", at=feb, title="二月案例", what_changed="二月的改进措施")
    write_lesson("withdrawn", at=feb, title="撤回的案例")
    write_lesson("in_review", at=feb, title="审核中的案例")
    write_lesson("published", at=datetime(2026, 3, 1, 2, tzinfo=timezone.utc), title="三月案例")
    html = bulletin_html(app, date(2026, 2, 1), datetime(2026, 3, 5, tzinfo=timezone.utc))
    section = html[html.index('id="lessons"'):]
    assert "二月案例" in section and "二月的改进措施" in section and "普通外科" in section
    for absent in ("撤回的案例", "审核中的案例", "三月案例"):
        assert absent not in section
    january = bulletin_html(app, date(2026, 1, 1), datetime(2026, 3, 5, tzinfo=timezone.utc))
    assert 'id="no-lessons"' in january


def test_the_writing_page_shows_the_case_to_write_from(clients, create_case):
    event = create_case(analysis="流程缺少双人核对节点。", feedback="感谢上报，已整改。")
    page = clients("quality").get(f"/events/{event.id}/lesson").get_data(as_text=True)
    case_text = page[page.index('id="case-text"'):page.index("</details>", page.index('id="case-text"'))]
    assert "配药时发现剂量多了一倍。" in case_text and "流程缺少双人核对节点。" in case_text and "感谢上报，已整改。" in case_text


def test_another_member_of_the_quality_office_cannot_rewrite_a_draft_page_or_api(clients, write_lesson):
    lesson = write_lesson("draft")
    quality2 = clients("quality2")
    refused = quality2.patch(f"/api/v1/lessons/{lesson.id}?lang=en", headers=quality2.csrf,
                             json={"what_happened": "改写的经过。", "version": lesson.version})
    assert refused.status_code == 403 and "author" in refused.json["message"]
    page = quality2.get(f"/lessons/{lesson.id}").get_data(as_text=True)
    assert 'id="edit-lesson"' not in page and 'id="author-edits"' in page
    form = quality2.get(f"/events/{lesson.event_id}/lesson")
    assert form.status_code == 302 and form.headers["Location"].endswith(f"/lessons/{lesson.id}")
    posted = quality2.post(f"/events/{lesson.event_id}/lesson",
                           data={**TEXT, "what_happened": "改写的经过。", "version": lesson.version,
                                 "csrf_token": quality2.csrf["X-CSRFToken"]})
    assert posted.status_code == 403 and 'id="lesson-form"' not in posted.get_data(as_text=True)
    assert clients("quality").get(f"/api/v1/lessons/{lesson.id}").json["what_happened"] == TEXT["what_happened"]
    assert 'id="edit-lesson"' in clients("quality").get(f"/lessons/{lesson.id}").get_data(as_text=True)
