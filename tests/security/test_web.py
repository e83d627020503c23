"""V2, V4, V6, V7: CSRF on every form post, security headers and no third-party origins on every page,
user text escaped in pages and literal in PDFs, request size limits."""
from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD, csrf_from
from tests.reports.pdftools import needs_poppler, pdf_text
from tests.security.test_access_matrix import GLOBAL_ARGS, ID_ARGS

#: Which of the world's users exercises a route with this access declaration.
ROLE_FOR = (("quality", "quality"), ("admin", "admin"), ("dept_head", "dept_head"), ("clinician", "doctor"),
            ("nurse", "nurse"))
THIRD_PARTY = re.compile(r"""(?:src|href|action|url)\s*[=(]\s*["']?\s*(?:https?:)?//""", re.I)
XSS = "<script>alert('xss')</script><img src=x onerror=alert(1)>"
#: Pages of the second login step, shown only after a right password: the world user (not enrolled
#: for the set-up page) whose password step opens them.
SECOND_STEP_PAGES = {"auth.second_factor": ("quality", True), "auth.enrol": ("admin", False)}


def page_routes(app, method):
    from qcflow.auth.permissions import access_of

    for rule in app.url_map.iter_rules():
        # The centre's pages exist only on a centre installation (404 here): tests/region/test_installation.py
        # walks them on a centre app.
        if rule.rule.startswith(("/api/", "/static/", "/centre")) or method not in (rule.methods or ()):
            continue
        with app.test_request_context(rule.rule, method=method):
            yield rule, access_of(rule.endpoint)


def user_for(access):
    if access.public:
        return None
    if not access.roles:
        return "quality"
    return next(user for role, user in ROLE_FOR if role in access.roles)


def path_of(rule, world):
    values = {arg: world["A"][ID_ARGS[arg]].id if arg in ID_ARGS else GLOBAL_ARGS[arg] for arg in rule.arguments}
    return rule.build(values, append_unknown=False)[1]


def test_every_form_post_without_a_csrf_token_is_400_and_changes_nothing(app, world, clients):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    routes = list(page_routes(app, "POST"))
    for _rule, access in routes:
        clients(user_for(access))  # log in first: a login is audited
    before = db.session.query(AuditEntry).count()
    checked, wrong = 0, []
    for rule, access in routes:
        client = clients(user_for(access))
        path = path_of(rule, world)
        for data in ({}, {"csrf_token": "forged.token.value"}):
            status = client.post(path, data=data).status_code
            checked += 1
            if status != 400:
                wrong.append(f"POST {path} {data} as {user_for(access)} → {status}")
    assert checked >= 40 and wrong == []
    db.session.expire_all()
    assert db.session.query(AuditEntry).count() == before


def test_a_logged_in_browser_needs_the_csrf_header_on_the_json_api(world, clients):
    """A cross-site page cannot ride on the user's cookie: JSON posts need X-CSRFToken too."""
    quality = clients("quality")
    event = world["A"]["event"]
    refused = quality.post(f"/api/v1/events/{event.id}/messages", json={"message": "x"})
    assert refused.status_code == 400
    allowed = quality.post(f"/api/v1/events/{event.id}/messages", json={"message": "x"},
                           headers={"X-CSRFToken": csrf_from(quality, "/account")})
    assert allowed.status_code == 201


def after_password_step(app, user, enrolled):
    """A browser between the password and the second factor of `user`."""
    from qcflow.extensions import db

    if not enrolled:
        user.totp_secret = None
        db.session.commit()
    client = app.test_client()
    client.post("/login", data={"csrf_token": csrf_from(client), "username": user.username, "password": PASSWORD})
    return client


#: Routes that serve a stored file (qcflow/files): a sandboxing CSP and "private, no-store".
SERVED_FILES = {"files.case_file", "files.case_thumbnail", "files.discussion_file", "files.discussion_thumbnail",
                "files.my_file", "files_api.get_case_file"}


def test_every_page_sends_security_headers_no_store_and_no_third_party_origin(app, world, clients):
    wrong, checked = [], 0
    for rule, access in page_routes(app, "GET"):
        if rule.endpoint in ("static",):
            continue
        path = path_of(rule, world)
        if rule.endpoint in SECOND_STEP_PAGES:
            role, enrolled = SECOND_STEP_PAGES[rule.endpoint]
            response = after_password_step(app, world["users"][role], enrolled).get(path)
        else:
            response = clients(user_for(access)).get(path)
        checked += 1
        headers = response.headers
        csp = headers.get("Content-Security-Policy", "")
        problems = []
        by_name = set(rule.arguments) - set(ID_ARGS)  # e.g. an indicator code this test does not know
        if response.status_code != 200 and not (by_name and response.status_code == 404):
            problems.append(f"status {response.status_code}")
        served_file = rule.endpoint in SERVED_FILES and response.status_code == 200  # stored files: stricter (nothing runs, no frame), private
        if "frame-ancestors 'none'" not in csp or re.search(r"https?:|\*", csp) or (
                "default-src 'none'" not in csp or "sandbox" not in csp if served_file else "default-src 'self'" not in csp):
            problems.append(f"CSP {csp!r}")
        if headers.get("X-Content-Type-Options") != "nosniff":
            problems.append("nosniff")
        if headers.get("Referrer-Policy") not in ("same-origin", "no-referrer", "strict-origin-when-cross-origin"):
            problems.append("Referrer-Policy")
        if headers.get("Cache-Control") != ("private, no-store" if served_file else "no-store"):
            problems.append(f"Cache-Control {headers.get('Cache-Control')!r}")
        if response.mimetype == "text/html" and THIRD_PARTY.search(response.get_data(as_text=True)):
            problems.append("third-party origin: " + THIRD_PARTY.search(response.get_data(as_text=True)).group(0))
        if problems:
            wrong.append(f"GET {path}: {problems}")
    assert checked >= 20, checked
    assert wrong == [], "\n".join(wrong)


def test_user_text_is_escaped_in_every_page_that_shows_it(app, world, clients):
    from qcflow.clinical.models import Patient
    from qcflow.extensions import db
    from qcflow.followup.models import Attempt
    from qcflow.mdt.models import Discussion

    a = world["A"]
    db.session.get(Patient, a["patient"].id).name = "患者" + XSS
    db.session.get(Discussion, a["discussion"].id).question = "讨论" + XSS
    db.session.get(Attempt, a["attempt"].id).note = "备注" + XSS
    event = a["event"]
    event.description, event.location = "叙述" + XSS, "地点" + XSS
    db.session.commit()
    pages = {
        "quality": [f"/events/{event.id}", "/events", f"/mdt/{a['discussion'].id}", f"/followup/tasks/{a['task'].id}",
                    "/followup/queue", f"/operations/{a['operation'].id}"],
        "dept_head": [f"/events/{event.id}"],
        "nurse": [f"/followup/tasks/{a['task'].id}", "/followup/queue"],
        "doctor": ["/my/reports", f"/mdt/{a['discussion'].id}"],
    }
    shown = 0
    for user, paths in pages.items():
        for path in paths:
            response = clients(user).get(path)
            html = response.get_data(as_text=True)
            assert response.status_code == 200, (user, path)
            assert "<script>alert" not in html and "<img src=x" not in html, (user, path)
            shown += "&lt;script&gt;alert(" in html
    assert shown >= 8  # the payloads were really on the pages, escaped


@needs_poppler
def test_user_text_is_literal_in_pdfs(app, world, clients, tmp_path):
    from qcflow.clinical.models import Patient
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    a = world["A"]
    db.session.get(Discussion, a["discussion"].id).question = "问题<b>粗体</b><script>alert(1)</script>"
    db.session.get(Patient, a["patient"].id).name = "患者<i>斜体</i>"
    db.session.commit()
    minutes = clients("quality").get(f"/mdt/{a['discussion'].id}/minutes.pdf")
    assert minutes.status_code == 200 and minutes.data.startswith(b"%PDF")
    assert "<b>粗体</b><script>alert(1)</script>" in pdf_text(minutes.data, tmp_path).replace("\n", "")
    sheet = clients("nurse").get(f"/followup/patients/{a['patient'].id}/sheet.pdf")
    assert sheet.status_code == 200 and "患者<i>斜体</i>" in pdf_text(sheet.data, tmp_path)


@pytest.mark.parametrize("path,user,kind", [
    ("/api/v1/events", None, "json"),
    ("/api/v1/intake/patients", "quality", "json"),
    ("/admin/reference/procedures", "admin", "upload"),
    ("/report", None, "form"),
])
def test_bodies_over_one_mebibyte_are_refused_with_413(world, clients, path, user, kind):
    client = clients(user)
    big = "x" * (1024 * 1024 + 10)
    if kind == "json":
        headers = {"X-CSRFToken": csrf_from(client, "/account")} if user else {}
        response = client.post(path, data='{"description": "' + big + '"}', content_type="application/json",
                               headers=headers)
    elif kind == "upload":
        boundary = "qcflowboundary"
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{csrf_from(client, path)}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.csv"\r\n'
                f'Content-Type: text/csv\r\n\r\n{big}\r\n--{boundary}--\r\n').encode()
        response = client.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}")
    else:
        response = client.post(path, data={"description": big})
    assert response.status_code == 413


@pytest.mark.parametrize("method, path", [("PUT", "/report"), ("DELETE", "/receipt"), ("PATCH", "/login")])
def test_a_method_the_page_does_not_take_is_405_not_a_csrf_failure(client, method, path):
    response = client.open(path, method=method)
    assert response.status_code == 405 and "Allow" in response.headers
