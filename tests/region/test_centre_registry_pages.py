"""The centre's pages of its hospitals: the list, register, edit, retire, and every version a hospital sent, in
Chinese and English, on a phone."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from qcflow.region import protocol
from tests.conftest import csrf_from

NOW = datetime(2026, 4, 3, 2, 0, tzinfo=timezone.utc)


@pytest.fixture
def app(centre_app):
    return centre_app


@pytest.fixture
def hospital_layout():
    departments = {"office": {"code": "QCC", "name": "质控中心办公室"}}
    people = {"admin": ("admin", "admin", "office"), "staff": ("staff", "centre", "office"),
              "quality": ("quality", "quality", "office")}
    return departments, people


@pytest.fixture
def received(hospital, actor_of):
    """Hospital H001 with two versions of March (the second current) and hospital H002, retired, with nothing."""
    from qcflow.extensions import db
    from qcflow.region import receiving, registry

    key = protocol.generate_key()
    registry.add_hospital({"code": "H001", "name": "郑州市第一人民医院", "name_en": "Zhengzhou First Hospital",
                           "level": "tertiary", "ownership": "public", "region": "郑州市",
                           "public_key": protocol.public_key_text(key)}, actor=actor_of("admin"), now=NOW)
    retired = registry.add_hospital({"code": "H002", "name": "开封市中医院", "level": "secondary",
                                     "ownership": "private", "region": "开封市",
                                     "public_key": protocol.public_key_text(protocol.generate_key())},
                                    actor=actor_of("admin"), now=NOW)
    registry.set_active(retired, False, retired.version, actor=actor_of("admin"), now=NOW)
    db.session.commit()
    ids = []
    for version, numerator in ((1, 3), (2, 4)):
        document = protocol.month_document(datetime(2026, 3, 1).date(), "henan", [
            {"code": "cardiac_arrest_rosc_rate", "unit": "percent", "numerator": numerator, "denominator": 8}])
        body = protocol.envelope("H001", "month", "2026-03", version, document, NOW)
        row = registry.hospital("H001")
        ids.append(receiving.receive(row, body, protocol.sign(key, body), now=NOW).submission.id)
        db.session.commit()
    return ids


def text(response) -> str:
    return re.sub(r"<code>.*?</code>", "", response.get_data(as_text=True), flags=re.S)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_list_and_the_versions_read_in_both_languages(clients, received, language):
    staff = clients("staff")
    page = staff.get(f"/centre/hospitals?lang={language}&active=all")
    assert page.status_code == 200
    html = text(page)
    assert ("郑州市第一人民医院" if language == "zh" else "Zhengzhou First Hospital") in html
    assert "开封市中医院" in html
    assert ("已停用" if language == "zh" else "Retired") in html
    assert "/centre/hospitals/new" not in html  # staff read, administrators register
    versions = staff.get(f"/centre/hospitals/H001/submissions?lang={language}")
    assert versions.status_code == 200
    rows = re.findall(r'<tr id="submission-(\d+)">', versions.get_data(as_text=True))
    assert rows == [str(received[1]), str(received[0])]  # newest first
    detail = staff.get(f"/centre/hospitals/H001/submissions/{received[0]}?lang={language}")
    assert detail.status_code == 200
    body = text(detail)
    assert ("心脏骤停" if language == "zh" else "ardiac") in body and "37.50%" in body
    if language == "zh":
        main = re.sub(r"<[^>]+>", " ", body.split("<main", 1)[1].split(">", 1)[1])
        assert not re.search(r"(?<![\w./@:-])[a-z]{3,}(?![\w/@:-])", main), main
    assert staff.get(f"/centre/hospitals/H002/submissions/{received[0]}").status_code == 404


def test_only_administrators_register_and_a_quality_user_is_refused(clients, received):
    assert clients("staff").get("/centre/hospitals/new").status_code == 403
    assert clients("quality").get("/centre/hospitals").status_code == 403
    assert clients("quality").get("/centre/hospitals/H001/submissions").status_code == 403
    assert clients("admin").get("/centre/hospitals/new").status_code == 200


def test_an_administrator_registers_edits_and_retires_through_the_pages(app, clients, received):
    from qcflow.extensions import db
    from qcflow.region.models import RegionHospital

    admin = clients("admin")
    token = csrf_from(admin, "/centre/hospitals/new")
    key = protocol.public_key_text(protocol.generate_key())
    form = {"csrf_token": token, "code": "H003", "name": "洛阳市中心医院", "name_en": "", "level": "tertiary",
            "ownership": "public", "region": "洛阳市", "public_key": key}
    bad = admin.post("/centre/hospitals/new", data={**form, "public_key": "not a key"})
    assert bad.status_code == 422 and "洛阳市中心医院" in bad.get_data(as_text=True)
    assert admin.post("/centre/hospitals/new", data=form).status_code == 302
    edit = admin.get("/centre/hospitals/H003/edit")
    assert edit.status_code == 200 and key in edit.get_data(as_text=True)
    saved = admin.post("/centre/hospitals/H003/edit", data={**form, "action": "save", "version": "1",
                                                             "region": "洛阳市老城区"})
    assert saved.status_code == 302
    stale = admin.post("/centre/hospitals/H003/edit", data={**form, "action": "save", "version": "1"})
    assert stale.status_code == 409
    unconfirmed = admin.post("/centre/hospitals/H003/edit?lang=en", data={"csrf_token": token, "action": "retire",
                                                                           "version": "2"})
    html = unconfirmed.get_data(as_text=True)
    assert unconfirmed.status_code == 422
    assert "Tick the box to confirm" in html.split('id="status-form"')[1]  # next to the box, in its form
    with app.app_context():
        assert db.session.scalar(sa.select(RegionHospital.is_active).where(RegionHospital.code == "H003"))
    retired = admin.post("/centre/hospitals/H003/edit", data={"csrf_token": token, "action": "retire",
                                                               "version": "2", "confirm": "yes"})
    assert retired.status_code == 302
    with app.app_context():
        row = db.session.scalar(sa.select(RegionHospital).where(RegionHospital.code == "H003"))
        assert (row.region, row.is_active, row.version) == ("洛阳市老城区", False, 3)


def test_the_pages_are_404_on_a_hospital_installation(database_url, tmp_path):
    from qcflow.auth import services
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from tests.conftest import PASSWORD, logged_in, make_app

    hospital_app = make_app(database_url, str(tmp_path / "hospital"))
    with hospital_app.app_context():
        office = services.create_department("QC", "质控办", "functional", actor=Actor.system("test"), now=NOW)
        services.create_user("admin1", PASSWORD, ["admin"], office, actor=Actor.system("test"), now=NOW)
        db.session.commit()
    client = logged_in(hospital_app, "admin1")  # allowed by role: the installation refuses
    for path in ("/centre/hospitals", "/centre/hospitals/new", "/centre/hospitals/H001/submissions"):
        assert client.get(path).status_code == 404, path


@pytest.mark.e2e
@pytest.mark.skipif(not __import__("os").path.exists("/usr/bin/chromium"), reason="no chromium")
@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_pages_fit_a_phone(app, clients, received, language):
    """390 px wide: no sideways scrolling on the list, the form and the versions."""
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, PHONE, check_no_horizontal_scroll

    admin = clients("admin")
    cookie = next(c for c in admin._cookies.values() if c.key == app.config["SESSION_COOKIE_NAME"])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found: list[str] = []

    def walk():
        # In a thread of its own: the browser journeys of tests/e2e keep a session's Playwright (and its asyncio
        # loop) running on the main thread, where a second sync Playwright cannot start.
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
                context = browser.new_context(base_url=f"http://127.0.0.1:{server.server_port}", **PHONE)
                context.add_cookies([{"name": cookie.key, "value": cookie.value, "domain": "127.0.0.1",
                                      "path": "/"}])
                page = context.new_page()
                for path in ("/centre/hospitals?active=all", "/centre/hospitals/new",
                             "/centre/hospitals/H001/edit", "/centre/hospitals/H001/submissions",
                             f"/centre/hospitals/H001/submissions/{received[1]}"):
                    page.goto(f"{path}{'&' if '?' in path else '?'}lang={language}")
                    if "/login" in page.url or not check_no_horizontal_scroll(page):
                        found.append(f"{path}: {page.url}")
                browser.close()
        except Exception as error:  # reported below, in the test's own thread
            found.append(repr(error))
        else:
            found.append("done")

    try:
        walker = threading.Thread(target=walk)
        walker.start()
        walker.join(120)
        assert found == ["done"], found
    finally:
        server.shutdown()
        server.server_close()


def test_a_received_form_shows_its_rows_and_its_versions(clients, received, actor_of):
    from qcflow.extensions import db
    from qcflow.region import receiving, registry

    key = protocol.generate_key()
    row = registry.hospital("H001")
    row = registry.update_hospital(row, {"public_key": protocol.public_key_text(key)}, row.version,
                                   actor=actor_of("admin"), now=NOW)
    document = {"schema": "qcflow.indicator-form/1", "plan": {"key": "henan"}, "kind": "quarterly",
                "period": {"year": 2026, "quarter": 1}, "rows": [{"seq": 1}, {"seq": 2}]}
    body = protocol.envelope("H001", "quarterly_form", "2026-Q1", 1, document, NOW)
    kept = receiving.receive(row, body, protocol.sign(key, body), now=NOW).submission.id
    db.session.commit()
    page = clients("staff").get(f"/centre/hospitals/H001/submissions/{kept}?lang=zh")
    assert page.status_code == 200 and "共 2 行" in page.get_data(as_text=True)
