"""Reports from patients and families: the public form a ward poster's QR code opens, filed like an anonymous
report (no user, no session, times to the hour, a receipt code), the contact they chose to leave shown to the
quality office only (each read audited), the category set at triage, and the same workflow and receipt."""
import re
from datetime import datetime, timedelta, timezone

import pytest

from tests.events.test_intake import SENTINEL_UA, rows
from tests.events.test_session_free import session_statements, sql_log  # noqa: F401 (a fixture)

NOW = datetime(2026, 3, 2, 2, 50, tzinfo=timezone.utc)  # 10:50 in Shanghai
TOKEN_RE = re.compile(r'name="(csrf_token|form_key)" value="([^"]+)"')


@pytest.fixture
def public_body(hospital):
    def make(**overrides):
        body = {"public_role": "family", "department_id": hospital["surgery"].id,
                "occurred_at": NOW - timedelta(hours=20), "description": "护士给我父亲发错了药，后来发现换回来了。",
                "location": "12床", "harm": "none", "contact_name": "李明", "contact_phone": "13800138000"}
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}

    return make


def staff_body(report_body):
    return report_body(occurred_at=NOW - timedelta(hours=3), discovered_at=NOW - timedelta(hours=2))


def file(body, now=NOW, seed=None):
    from qcflow.events.services import file_public_report

    return file_public_report(body, now=now, receipt_seed=seed)


def test_a_family_report_is_stored_like_an_anonymous_one_with_its_role_and_contact(hospital, public_body):
    from qcflow.core.audit import AnonymousAuditEntry, AuditEntry
    from qcflow.events.services import find_by_receipt

    event, code = file(public_body())
    assert (event.mode, event.reporter_user_id, event.public_role, event.state) == ("anonymous", None, "family",
                                                                                   "submitted")
    assert (event.contact_name, event.contact_phone) == ("李明", "13800138000")
    hour = datetime(2026, 3, 2, 2, tzinfo=timezone.utc)
    assert event.created_at == event.submitted_at == event.submitted_recorded_at == hour
    assert event.category_code is None and event.reporter_grade is None and event.care_stage is None
    assert event.found_by == "reporter" and event.department_id == hospital["surgery"].id
    assert find_by_receipt(code) is event
    # No trace of anybody in the named audit chain; the anonymous chain keeps the hour only.
    assert rows(AuditEntry, AuditEntry.object_id == str(event.id)) == []
    assert {e.at for e in rows(AnonymousAuditEntry, AnonymousAuditEntry.object_id == str(event.id))} == {hour}


def test_without_wanting_an_answer_there_is_no_receipt_code(hospital, public_body):
    event, code = file({**public_body(contact_name=None, contact_phone=None), "wants_feedback": False})
    assert code is None and event.receipt_hash is None and event.contact_phone is None


@pytest.mark.parametrize("change, field", [
    ({"description": None}, "description"),
    ({"public_role": None}, "public_role"),
    ({"department_id": None}, "department_id"),
    ({"occurred_at": NOW + timedelta(days=1)}, "occurred_on"),
    ({"occurred_at": NOW + timedelta(hours=2)}, "occurred_time"),  # later today: the time is wrong, not the day
    ({"occurred_at": NOW - timedelta(days=400)}, "occurred_on"),
    ({"contact_phone": "call me"}, "contact_phone"),
    ({"contact_phone": "12"}, "contact_phone"),
    ({"department_id": 9999}, "department_id"),
])
def test_the_public_forms_rules_name_the_field(hospital, public_body, change, field):
    from qcflow.core.errors import Unprocessable
    from qcflow.events.models import AdverseEvent

    with pytest.raises(Unprocessable) as refused:
        file({**public_body(), **change} if None not in change.values() else public_body(**change))
    assert field in refused.value.errors
    assert rows(AdverseEvent) == []


def test_a_time_earlier_today_is_not_in_the_future_of_the_hour(hospital, public_body):
    event, _ = file(public_body(occurred_at=NOW - timedelta(minutes=5)))
    assert event.occurred_at == NOW - timedelta(minutes=5)


def test_contact_is_shown_to_the_quality_office_only_and_each_read_is_audited(hospital, public_body, actor_of):
    from qcflow.core.audit import AuditEntry
    from qcflow.events.services import public_contact

    event, _ = file(public_body())
    assert public_contact(event, actor=actor_of("head"), now=NOW) is None
    assert rows(AuditEntry, AuditEntry.action == "event.read_contact") == []
    assert public_contact(event, actor=actor_of("quality"), now=NOW) == {"name": "李明", "phone": "13800138000"}
    assert public_contact(event, actor=actor_of("quality"), now=NOW)["phone"] == "13800138000"
    reads = rows(AuditEntry, AuditEntry.action == "event.read_contact")
    assert len(reads) == 2 and {r.actor for r in reads} == {f"user:{hospital['quality'].id}"}


def test_triage_of_a_public_report_needs_a_known_category(hospital, public_body, actor_of):
    from qcflow.core.errors import DomainError
    from qcflow.events.services import transition_event

    event, _ = file(public_body())
    quality = actor_of("quality")
    step = {"confirmed_grade": "III", "handling_department_id": hospital["pharmacy"].id, "external_severity": "none"}
    with pytest.raises(DomainError) as refused:
        transition_event(event, "triage", dict(step), actor=quality, now=NOW, expected_version=event.version)
    assert "category_code" in str(refused.value.message)
    with pytest.raises(DomainError) as unknown:
        transition_event(event, "triage", {**step, "category_code": "no_such"}, actor=quality, now=NOW,
                         expected_version=event.version)
    assert "category_code" in unknown.value.errors
    transition_event(event, "triage", {**step, "category_code": "medication", "subcategory_code": "wrong_dose",
                                       "care_stage": "medication"}, actor=quality, now=NOW,
                     expected_version=event.version)
    assert (event.state, event.category_code, event.subcategory_code, event.care_stage) == (
        "triaged", "medication", "wrong_dose", "medication")


def test_a_staff_report_is_triaged_without_giving_its_category_again(hospital, report_body, actor_of):
    from qcflow.core.actors import Actor
    from qcflow.events.services import file_report, transition_event

    event, _ = file_report(staff_body(report_body), mode="anonymous", actor=Actor.anonymous(), now=NOW)
    transition_event(event, "triage", {"confirmed_grade": "III", "handling_department_id": hospital["pharmacy"].id,
                                       "external_severity": "none"}, actor=actor_of("quality"), now=NOW,
                     expected_version=event.version)
    assert event.state == "triaged" and event.category_code == "medication"


def test_public_reports_count_apart_from_staff_reports(hospital, public_body, report_body, actor_of):
    from qcflow.core.actors import Actor
    from qcflow.core.periods import Period
    from qcflow.events.services import file_report
    from qcflow.extensions import db
    from qcflow.indicators.definitions import events_found_by_system, events_reported_by_public, reported_events
    from qcflow.reports.analysis import found_by_split

    staff, _ = file_report(staff_body(report_body), mode="anonymous", actor=Actor.anonymous(), now=NOW)
    public = [file(public_body(), seed=f"s{i}")[0] for i in range(2)]
    period = Period(datetime(2026, 3, 1).date(), datetime(2026, 3, 31).date())

    def ids(select):
        return {row.id for row in db.session.execute(select)}

    assert ids(reported_events(period)) == {staff.id}
    assert ids(events_reported_by_public(period)) == {e.id for e in public}
    assert ids(events_found_by_system(period)) == set()
    split = found_by_split(period, None, 1)
    assert (split["reporter"]["count"], split["trigger"]["count"], split["public"]["count"]) == (1, 0, 2)


# Pages

def tokens(html: str) -> dict:
    found = {}
    for name, value in TOKEN_RE.findall(html):
        found[name] = value  # the page's own form comes last
    return found


def public_form(hospital, **fields):
    form = {"public_role": "family", "department_id": str(hospital["surgery"].id), "occurred_on": "2026-03-01",
            "occurred_time": "21:15", "location": "12床", "description": "夜里呼叫铃坏了，叫了很久没人来。",
            "harm": "unknown", "contact_name": "", "contact_phone": "", "wants_feedback": "1"}
    form.update(fields)
    return form


@pytest.fixture
def at_now(monkeypatch):
    """The pages' clock at NOW (the form's dates are checked against it)."""
    import qcflow.events.views as views

    monkeypatch.setattr(views, "now", lambda: NOW)


def test_the_qr_codes_link_preselects_the_ward_and_an_unknown_code_preselects_nothing(clients, hospital):
    client = clients("anonymous")
    page = client.get("/report/patient?d=GS").get_data(as_text=True)
    assert f'<option value="{hospital["surgery"].id}" selected>' in page
    other = client.get("/report/patient?d=NOPE")
    assert other.status_code == 200 and " selected>" not in other.get_data(as_text=True)
    chinese = page
    assert "告诉我们" in chinese or "安全" in chinese
    for code in ("category_code", "reporter_grade", "care_stage", "ncc_merp"):
        assert f'name="{code}"' not in chinese  # no clinical grading
    english = client.get("/report/patient?d=GS&lang=en").get_data(as_text=True)
    assert "Tell us about a safety problem" in english and 'lang="en"' in english


def test_filing_from_the_page_gives_a_receipt_code_and_sets_no_cookie(clients, hospital, at_now):
    from qcflow.events.models import AdverseEvent

    client = clients("anonymous")
    page = client.get("/report/patient?d=GS").get_data(as_text=True)
    answer = client.post("/report/patient", data={**public_form(hospital, contact_name="王芳",
                                                                  contact_phone="139 1234 5678"), **tokens(page)},
                         headers={"User-Agent": SENTINEL_UA})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert "Set-Cookie" not in answer.headers
    code = re.search(r'data-code="([^"]+)"', answer.get_data(as_text=True)).group(1)
    assert 'id="receipt-public-help"' in answer.get_data(as_text=True)
    [event] = rows(AdverseEvent)
    assert (event.public_role, event.contact_phone, event.harm) == ("family", "139 1234 5678", None)
    assert event.occurred_at == datetime(2026, 3, 1, 13, 15, tzinfo=timezone.utc)  # 21:15 in Shanghai
    lookup = client.post("/api/v1/receipts/lookup", json={"receipt_code": code})
    assert lookup.status_code == 200 and lookup.json["state"] == "submitted"


def test_a_resent_form_files_once_and_gives_the_same_receipt(clients, hospital, at_now):
    from qcflow.events.models import AdverseEvent

    client = clients("anonymous")
    form = {**public_form(hospital), **tokens(client.get("/report/patient").get_data(as_text=True))}
    first = client.post("/report/patient", data=form)
    again = client.post("/report/patient", data=form)
    code = re.compile(r'data-code="([^"]+)"')
    assert code.search(first.get_data(as_text=True)).group(1) == code.search(again.get_data(as_text=True)).group(1)
    assert len(rows(AdverseEvent)) == 1
    other = client.post("/report/patient", data={**form, "description": "另外一件事：地面湿滑差点摔倒。"})
    assert other.status_code == 409 and "data-code" not in other.get_data(as_text=True)
    assert len(rows(AdverseEvent)) == 1


@pytest.mark.parametrize("fields, field", [
    ({"description": ""}, "description"),
    ({"public_role": ""}, "public_role"),
    ({"occurred_on": "2026-03-05"}, "occurred_on"),
    ({"occurred_on": "2024-01-01"}, "occurred_on"),
    ({"occurred_on": "yesterday"}, "occurred_on"),
    ({"contact_phone": "abc"}, "contact_phone"),
    ({"occurred_on": "2026-03-02", "occurred_time": "23:59"}, "occurred_time"),
])
def test_a_refused_form_is_422_with_the_error_next_to_its_field(clients, hospital, at_now, fields, field):
    from qcflow.events.models import AdverseEvent

    client = clients("anonymous")
    form = {**public_form(hospital, **fields), **tokens(client.get("/report/patient").get_data(as_text=True))}
    answer = client.post("/report/patient?lang=en", data=form)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert f'id="{field}-error"' in html and f'aria-describedby="{field}-error"' in html
    assert "夜里呼叫铃坏了" in html or field == "description"  # what was typed is kept
    if field == "occurred_time":
        assert "This time is later than now" in html and 'id="occurred_on-error"' not in html
    assert rows(AdverseEvent) == []


def test_a_logged_in_browser_files_without_its_session_being_read(clients, hospital, at_now, sql_log):  # noqa: F811
    from qcflow.events.models import AdverseEvent

    doctor = clients("clinician")
    sql_log.clear()
    page = doctor.get("/report/patient?d=GS")
    answer = doctor.post("/report/patient", data={**public_form(hospital), **tokens(page.get_data(as_text=True))})
    assert (page.status_code, answer.status_code) == (200, 200)
    for response in (page, answer):
        assert "Set-Cookie" not in response.headers and "Cookie" not in response.headers.get("Vary", "")
    assert not session_statements(sql_log)
    assert "张建国" not in page.get_data(as_text=True)
    [event] = rows(AdverseEvent)
    assert event.reporter_user_id is None


def test_the_public_page_is_the_same_bytes_for_every_browser(clients, hospital):
    from tests.events.test_session_free import masked

    seen = [masked(clients(who).get("/report/patient?d=GS")) for who in ("anonymous", "clinician", "quality")]
    assert seen[0] == seen[1] == seen[2]


def test_inbox_marks_and_filters_public_reports_and_the_case_page_shows_the_role(clients, hospital, public_body,
                                                                                  report_body):
    from qcflow.core.actors import Actor
    from qcflow.core.audit import AuditEntry
    from qcflow.events.services import file_report
    from qcflow.extensions import db

    public, _ = file(public_body())
    staff, _ = file_report(staff_body(report_body), mode="anonymous", actor=Actor.anonymous(), now=NOW)
    db.session.commit()
    quality = clients("quality")
    inbox = quality.get("/events?lang=en").get_data(as_text=True)
    assert inbox.count("badge public-report") == 1 and 'id="posters-link"' in inbox
    only_public = quality.get("/events?reported_by=public").get_data(as_text=True)
    assert public.reference in only_public and staff.reference not in only_public
    only_staff = quality.get("/events?reported_by=staff").get_data(as_text=True)
    assert staff.reference in only_staff and public.reference not in only_staff
    api = quality.get("/api/v1/events", query_string={"reported_by": "public"}).json
    assert [item["reference"] for item in api["items"]] == [public.reference]
    assert api["items"][0]["public_role"] == "family" and "13800138000" not in str(api)

    case = quality.get(f"/events/{public.id}?lang=en").get_data(as_text=True)
    facts = case[case.index('id="facts"'):case.index("</dl>")]
    assert "Patient/family report" in facts and "A family member" in facts and "Anonymous" not in facts
    assert "13800138000" not in case and 'id="show-contact"' in case
    assert rows(AuditEntry, AuditEntry.action == "event.read_contact") == []
    # A GET changes nothing (a cross-site image could send one): the old address shows no contact, records no read.
    old_address = quality.get(f"/events/{public.id}?show_contact=1").get_data(as_text=True)
    assert "13800138000" not in old_address and rows(AuditEntry, AuditEntry.action == "event.read_contact") == []
    assert quality.post(f"/events/{public.id}/contact").status_code == 400  # no CSRF token
    assert rows(AuditEntry, AuditEntry.action == "event.read_contact") == []
    shown = quality.post(f"/events/{public.id}/contact", data={"csrf_token": tokens(case)["csrf_token"]})
    assert shown.status_code == 200
    assert "13800138000" in shown.get_data(as_text=True) and "李明" in shown.get_data(as_text=True)
    assert len(rows(AuditEntry, AuditEntry.action == "event.read_contact")) == 1
    head = clients("head")
    refused = head.post(f"/events/{public.id}/contact", data={"csrf_token": head.csrf["X-CSRFToken"]})
    assert refused.status_code == 403 and "13800138000" not in refused.get_data(as_text=True)


def test_a_department_head_never_sees_the_contact(clients, hospital, public_body):
    from qcflow.extensions import db

    public, _ = file(public_body())
    db.session.commit()
    head = clients("head")
    for path in (f"/events/{public.id}", f"/events/{public.id}?show_contact=1", "/events",
                 f"/api/v1/events/{public.id}", "/api/v1/events"):
        answer = head.get(path)
        assert answer.status_code == 200, path
        assert "13800138000" not in answer.get_data(as_text=True) and "李明" not in answer.get_data(as_text=True)
    assert head.get("/events/posters").status_code == 403


def test_the_reporter_reads_the_question_answers_and_reads_the_feedback(clients, hospital, public_body, act):
    from qcflow.extensions import db

    public, code = file(public_body())
    db.session.commit()
    quality, reporter = clients("quality"), clients("anonymous")
    csrf = tokens(quality.get(f"/events/{public.id}").get_data(as_text=True))["csrf_token"]
    asked = quality.post(f"/events/{public.id}/transitions", data={"csrf_token": csrf, "action": "request_info",
                                                                   "version": public.version,
                                                                   "message": "请问是哪一天的夜班？"})
    assert asked.status_code == 302
    page = reporter.get("/receipt").get_data(as_text=True)
    read = reporter.post("/receipt", data={"csrf_token": tokens(page)["csrf_token"], "receipt_code": code})
    assert "请问是哪一天的夜班？" in read.get_data(as_text=True)
    reporter.post("/receipt", data={"csrf_token": tokens(page)["csrf_token"], "receipt_code": code,
                                    "message": "3月1日夜班"})
    db.session.expire_all()
    assert public.state == "submitted"
    triage = quality.post(f"/events/{public.id}/transitions", data={
        "csrf_token": csrf, "action": "triage", "version": public.version, "confirmed_grade": "IV",
        "handling_department_id": hospital["qc"].id, "external_severity": "none", "category_code": "medication"})
    assert triage.status_code == 302, triage.get_data(as_text=True)
    db.session.expire_all()
    closed = quality.post(f"/events/{public.id}/transitions", data={
        "csrf_token": csrf, "action": "close", "version": public.version, "analysis": "呼叫系统故障",
        "feedback": "已维修呼叫铃并加强夜间巡视，谢谢您的反馈。"})
    assert closed.status_code == 302, closed.get_data(as_text=True)
    answer = reporter.post("/receipt", data={"csrf_token": tokens(page)["csrf_token"], "receipt_code": code})
    assert "已维修呼叫铃并加强夜间巡视" in answer.get_data(as_text=True)


def test_the_case_pages_triage_form_asks_for_the_category_a_public_report_lacks(clients, hospital, public_body):
    from qcflow.extensions import db

    public, _ = file(public_body())
    db.session.commit()
    page = clients("quality").get(f"/events/{public.id}").get_data(as_text=True)
    triage = page[page.index('id="step-triage"'):]
    triage = triage[:triage.index("</form>")]
    assert 'name="category_code" required' in triage and 'name="care_stage"' in triage


# Ward posters

@pytest.fixture
def poster_link(app):
    """The address the posters give (PUBLIC_REPORT_LINK_BASE), reset after the test."""
    app.config["PUBLIC_REPORT_LINK_BASE"] = "https://qc.hospital.example.cn/"
    yield "https://qc.hospital.example.cn/report/patient?d="
    app.config["PUBLIC_REPORT_LINK_BASE"] = None


def test_the_posters_page_lists_each_department_with_its_link(clients, hospital, poster_link):
    page = clients("quality").get("/events/posters").get_data(as_text=True)
    assert f"{poster_link}GS" in page and 'href="/events/posters/GS.pdf"' in page
    assert clients("nurse").get("/events/posters").status_code == 403
    assert clients("quality").get("/events/posters/NOPE.pdf").status_code == 404


def test_without_a_configured_base_the_link_is_this_hosts(app, hospital):
    from qcflow.events.views import public_report_link

    with app.test_request_context("/events/posters", base_url="https://qcflow.local"):
        assert public_report_link(hospital["surgery"]) == "https://qcflow.local/report/patient?d=GS"


def test_the_poster_is_a_chinese_a4_pdf_whose_qr_code_opens_the_departments_form(clients, hospital, poster_link,
                                                                                   monkeypatch, tmp_path):
    import segno

    from tests.reports.pdftools import needs_poppler, pdf_text  # noqa: F401
    import qcflow.events.views as views

    made = []
    real = segno.make

    def recording(content, **kw):
        made.append(content)
        return real(content, **kw)

    monkeypatch.setattr(views.segno, "make", recording)
    response = clients("quality").get("/events/posters/GS.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert made == [f"{poster_link}GS"]  # the QR code holds exactly the department's link
    assert segno.make(made[0], error="m").designator.endswith("-M")
    import shutil
    if shutil.which("pdftotext"):
        text = pdf_text(response.data, tmp_path)
        assert "普通外科" in text and "告诉我们安全问题" in text and "回执码" in text
        assert f"{poster_link}GS" in text.replace("\n", "").replace(" ", "")


def test_the_timeline_names_a_public_reports_steps_patient_or_family_not_anonymous(clients, hospital, public_body,
                                                                                    report_body):
    import subprocess

    from qcflow.core.actors import Actor
    from qcflow.events.services import file_report
    from qcflow.extensions import db

    public, _ = file(public_body())
    staff, _ = file_report(staff_body(report_body), mode="anonymous", actor=Actor.anonymous(), now=NOW)
    db.session.commit()
    quality = clients("quality")

    def timeline(event):
        page = quality.get(f"/events/{event.id}?lang=en").get_data(as_text=True)
        return page[page.index('id="timeline"'):]

    assert "Patient/family" in timeline(public) and "Anonymous reporter" not in timeline(public)
    assert "Anonymous reporter" in timeline(staff) and "Patient/family" not in timeline(staff)
    pdf = quality.get(f"/events/{public.id}/case.pdf?lang=en")
    assert pdf.status_code == 200
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf.data, capture_output=True, check=True).stdout.decode()
    steps = text[text.rindex("Timeline"):]
    assert "Patient/family" in steps and "Anonymous reporter" not in steps


@pytest.mark.parametrize("key", [None, "", "1700000000.forged.key"])
def test_a_public_form_without_its_own_key_files_nothing_and_comes_back_to_be_sent_again(clients, hospital, at_now,
                                                                                         key):
    """A replay of one CSRF token would file report after report, none tied to its form: the form is always
    rendered with its one-time key, so a post without a valid one is sent back, filled in, with a fresh key."""
    from qcflow.events.models import AdverseEvent

    client = clients("anonymous")
    form = {**public_form(hospital, description="没有表单编号的报告内容"),
            "csrf_token": tokens(client.get("/report/patient").get_data(as_text=True))["csrf_token"]}
    if key is not None:
        form["form_key"] = key
    for _attempt in range(2):
        answer = client.post("/report/patient?lang=en", data=form)
        html = answer.get_data(as_text=True)
        assert answer.status_code == 400 and "data-code" not in html
        assert "send it again" in html and "没有表单编号的报告内容" in html
    assert rows(AdverseEvent) == []
    sent = client.post("/report/patient", data={**form, **tokens(html)})
    assert sent.status_code == 200 and 'data-code="' in sent.get_data(as_text=True)
    assert len(rows(AdverseEvent)) == 1


def test_a_wrong_code_for_a_download_answers_with_the_receipt_page_and_its_message(clients, hospital):
    client = clients("anonymous")
    token = tokens(client.get("/receipt").get_data(as_text=True))["csrf_token"]
    answer = client.post("/receipt/files/12345?lang=en", data={"csrf_token": token, "receipt_code": "AAAA-BBBB-CCCC"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 404
    assert "No report matches this receipt code" in html and 'name="receipt_code"' in html
    assert "Check the address" not in html
