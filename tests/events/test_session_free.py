"""A2 with a logged-in browser: the anonymous routes open no session and answer everybody alike; a named
report needs the session's own CSRF token; wrong receipt codes from one client lock nobody else out."""
import re
import secrets
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.events.test_intake import SENTINEL_UA, rows

TOKEN_RE = re.compile(r'(name="(?:csrf_token|form_key)" value=")([^"]+)(")')
RECEIPT_SYMBOLS = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


@pytest.fixture(autouse=True)
def fresh_receipt_limits():
    from qcflow.events import receipts

    for limiter in (receipts.receipt_guesses, receipts.receipt_clients):
        limiter._counts.clear()


@pytest.fixture
def sql_log(app):
    """Every SQL statement the app runs while the test records."""
    from qcflow.extensions import db

    with app.app_context():
        engine = db.engine
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    yield statements
    sa.event.remove(engine, "before_cursor_execute", record)


def page_token(html: str) -> str:
    """The token of the page's own form (the last one: it follows the top bar's)."""
    return [m.group(2) for m in TOKEN_RE.finditer(html) if m.group(0).startswith('name="csrf_token"')][-1]


def form_of(html: str, **fields) -> dict:
    return {"csrf_token": page_token(html), **fields}


def report_form(report_body, **fields):
    return {**report_body(occurred_at="2026-03-01T09:30", discovered_at="2026-03-01T10:00"),
            "mode": "anonymous", "wants_feedback": "1", **fields}


def session_statements(statements):
    """The session look-ups (by the cookie's key) and touches among `statements`."""
    return [s for s in statements if "user_session.key_hash = " in s or s.startswith("UPDATE user_session")]


def last_seen(user_id):
    from qcflow.auth.models import UserSession

    return [s.last_seen_at for s in rows(UserSession, UserSession.user_id == user_id)]


def test_logged_in_browser_files_anonymously_without_its_session_being_loaded(app, clients, hospital, report_body,
                                                                              sql_log):
    from qcflow.auth.models import UserSession
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    doctor = clients("clinician")
    with app.app_context():  # seen two minutes ago: loading the session now would write last_seen_at
        for row in rows(UserSession):
            row.last_seen_at -= timedelta(minutes=2)
        db.session.commit()
        before = last_seen(hospital["clinician"].id)
    sql_log.clear()
    page = doctor.get("/report")
    posted = doctor.post("/report", data=form_of(page.get_data(as_text=True), **report_form(report_body)),
                         headers={"User-Agent": SENTINEL_UA})
    assert posted.status_code == 200
    assert not session_statements(sql_log)
    with app.app_context():
        assert last_seen(hospital["clinician"].id) == before
    code = re.search(r'data-code="([^"]+)"', posted.get_data(as_text=True)).group(1)
    # A logged-in browser's anonymous API calls need no CSRF header: they carry no login.
    api = doctor.post("/api/v1/events", json=report_body())
    receipt_page = doctor.get("/receipt")
    answers = [page, posted, api, receipt_page,
               doctor.post("/receipt", data=form_of(receipt_page.get_data(as_text=True), receipt_code=code)),
               doctor.post("/api/v1/receipts/lookup", json={"receipt_code": code}),
               doctor.post("/api/v1/receipts/reply", json={"receipt_code": code, "message": "补充：当班两人"})]
    assert [a.status_code for a in answers] == [200, 200, 201, 200, 200, 200, 200]
    for answer in answers:
        assert "Set-Cookie" not in answer.headers and "Cookie" not in answer.headers.get("Vary", "")
    assert not session_statements(sql_log)
    with app.app_context():
        assert last_seen(hospital["clinician"].id) == before
        assert {e.mode for e in rows(AdverseEvent)} == {"anonymous"}
        assert all(e.reporter_user_id is None for e in rows(AdverseEvent))
    # The same browser's own pages still use its login (the check above can fail).
    assert doctor.get("/my/reports").status_code == 200
    assert session_statements(sql_log)


def masked(response) -> tuple:
    """The answer as sent, with the one-time form tokens (same length for everybody) blanked."""
    body = response.get_data()
    tokens = [m.group(2) for m in TOKEN_RE.finditer(body.decode())]
    return (response.status_code, sorted(response.headers.items()), len(body), [len(t) for t in tokens],
            TOKEN_RE.sub(lambda m: m.group(1) + "-" + m.group(3), body.decode()))


def test_report_and_receipt_pages_are_the_same_bytes_for_every_browser(clients, hospital, report_body):
    browsers = [clients("anonymous"), clients("clinician"), clients("quality")]
    code = clients("anonymous").post("/api/v1/events", json=report_body()).json["receipt_code"]

    def answers(client):
        token = page_token(client.get("/receipt").get_data(as_text=True))
        return [
            client.get("/report"), client.get("/report?lang=en"), client.get("/receipt"),
            client.post("/receipt", data={"csrf_token": token, "receipt_code": code}),
            client.post("/receipt?lang=en", data={"csrf_token": token, "receipt_code": "WRONG-CODE"}),
            client.post("/report", data={"csrf_token": token, "mode": "anonymous"}),  # fields missing: 422
        ]

    seen = [[masked(a) for a in answers(browser)] for browser in browsers]
    assert seen[0] == seen[1] == seen[2]
    english = seen[0][1][4]
    assert 'lang="en"' in english and "Report an adverse event" in english  # ?lang= still chooses
    assert "张建国" not in str(seen)  # no personal top bar


def test_named_report_needs_the_token_of_the_logged_in_session(clients, hospital, report_body):
    from qcflow.events.models import AdverseEvent

    doctor = clients("clinician")
    sessionless = form_of(doctor.get("/report").get_data(as_text=True))
    for path in ("/report", "/report/named"):
        refused = doctor.post(path, data={**report_form(report_body, mode="named"), **sessionless})
        assert refused.status_code == 400, path
        assert rows(AdverseEvent) == []
    other = clients("nurse")  # another login's token is no better
    borrowed = form_of(other.get("/report/named").get_data(as_text=True))
    assert doctor.post("/report/named", data={**report_form(report_body, mode="named"), **borrowed}).status_code == 400
    # Over the API a named report opens the session too, so it needs the session's token in a header.
    assert doctor.post("/api/v1/events", json={**report_body(), "mode": "named"}).status_code == 400
    assert rows(AdverseEvent) == []
    page = doctor.get("/report/named").get_data(as_text=True)
    own = {**form_of(page), "form_key": re.search(r'name="form_key" value="([^"]+)"', page).group(1)}
    filed = doctor.post("/report/named", data={**report_form(report_body, mode="confidential"), **own})
    assert filed.status_code == 302 and "/my/reports" in filed.headers["Location"]
    [event] = rows(AdverseEvent)
    assert event.mode == "confidential" and event.reporter_user_id == hospital["clinician"].id


def test_logged_in_form_files_nothing_anonymously(clients, report_body):
    from qcflow.events.models import AdverseEvent

    doctor = clients("clinician")
    response = doctor.post("/report/named", data={**report_form(report_body),
                                                  **form_of(doctor.get("/report/named").get_data(as_text=True))})
    assert response.status_code == 422 and 'href="/report"' in response.get_data(as_text=True)
    assert rows(AdverseEvent) == []


def random_code() -> str:
    symbols = "".join(secrets.choice(RECEIPT_SYMBOLS) for _ in range(26))
    return "-".join(symbols[i:i + 4] for i in range(0, 26, 4))


def test_a_flood_of_wrong_codes_from_one_address_locks_no_reporter_out(app, clients, report_body):
    reporter, flooder = clients("anonymous"), app.test_client()
    code = reporter.post("/api/v1/events", json=report_body()).json["receipt_code"]
    token = page_token(flooder.get("/receipt").get_data(as_text=True))
    statuses = set()
    for _ in range(150):  # as behind nginx: every request comes from 127.0.0.1
        statuses.add(flooder.post("/api/v1/receipts/lookup", json={"receipt_code": random_code()}).status_code)
        statuses.add(flooder.post("/receipt", data={"csrf_token": token, "receipt_code": random_code()}).status_code)
    assert statuses == {404}
    assert reporter.post("/api/v1/receipts/lookup", json={"receipt_code": code}).status_code == 200
    page = reporter.post("/receipt", data={"csrf_token": token, "receipt_code": code})
    assert page.status_code == 200 and code in page.get_data(as_text=True)


def test_wrong_codes_are_limited_per_code_prefix_and_per_known_address(app, clients, report_body):
    from qcflow.events.receipts import receipt_clients, receipt_guesses

    client = clients("anonymous")
    code = client.post("/api/v1/events", json=report_body()).json["receipt_code"]
    guess = code[:5] + ("A" if code[5] != "A" else "B") + code[6:]  # the reporter's prefix, one symbol wrong
    limit = app.config["RECEIPT_WRONG_CODES_PER_PREFIX_10_MIN"]
    answers = [client.post("/api/v1/receipts/lookup", json={"receipt_code": guess}).status_code for _ in range(limit + 1)]
    assert answers == [404] * limit + [429]
    refused = client.post("/api/v1/receipts/lookup", json={"receipt_code": guess})
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "600"
    # The reporter who mistyped their own code ten times still reads it with the right one.
    assert client.post("/api/v1/receipts/lookup", json={"receipt_code": code}).status_code == 200
    assert client.post("/api/v1/receipts/lookup", json={"receipt_code": random_code()}).status_code == 404
    # A client whose address is known (it connects directly) has its own, generous limit.
    app.config["RECEIPT_LOOKUPS_PER_10_MIN"] = 3
    direct = [client.post("/api/v1/receipts/lookup", json={"receipt_code": random_code()},
                          environ_base={"REMOTE_ADDR": "192.0.2.9"}).status_code for _ in range(4)]
    assert direct == [404, 404, 404, 429]
    assert client.post("/api/v1/receipts/lookup", json={"receipt_code": random_code()},
                       environ_base={"REMOTE_ADDR": "192.0.2.10"}).status_code == 404
    keys = [*receipt_guesses._counts, *receipt_clients._counts]  # keyed hashes: no address, no code
    assert keys and all(re.fullmatch(r"[0-9a-f]{64}", key) for key in keys)


@pytest.mark.parametrize("page", ["/report", "/receipt"])
def test_the_session_free_bar_offers_the_staff_pages_and_keeps_the_chosen_language(clients, hospital, page):
    """A logged-in doctor on the anonymous form is not told to "log in"; English stays English."""
    html = clients("clinician").get(page + "?lang=en").get_data(as_text=True)
    assert re.search(r'<a href="/\?lang=en" id="nav-login">Staff pages</a>', html), html[:3000]
    assert 'href="/receipt?lang=en"' in html and 'href="/report?lang=en"' in html
    chinese = clients("anonymous").get(page).get_data(as_text=True)
    assert '<a href="/" id="nav-login">工作人员入口</a>' in chinese and 'href="/receipt"' in chinese


@pytest.mark.parametrize("chosen_by", ["account", "session"])
def test_links_to_the_session_free_pages_keep_a_language_chosen_without_the_url(app, clients, hospital, chosen_by):
    """An English-speaking nurse (her account's setting, or a switch earlier in the session) who follows the
    footer's "Report an event" or the bar's "Check a receipt" lands on the English page, not the Chinese one."""
    from qcflow.extensions import db

    nurse = clients("nurse")
    if chosen_by == "account":
        with app.app_context():
            db.session.get(type(hospital["nurse"]), hospital["nurse"].id).locale = "en"
            db.session.commit()
    else:
        nurse.get("/notifications?lang=en")
    home = nurse.get("/").get_data(as_text=True)
    assert "Report an event" in home
    links = set(re.findall(r'href="(/(?:report|receipt)(?:\?[^"]*)?)"', home))
    assert links and links <= {"/report?lang=en", "/receipt?lang=en"}, links
    report = nurse.get("/report?lang=en").get_data(as_text=True)
    assert 'href="/receipt?lang=en"' in report and "Check a receipt" in report
