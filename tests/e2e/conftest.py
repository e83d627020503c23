"""Browser journeys: Playwright's sync API drives Debian's Chromium against a real HTTP server.

One browser per test session; one server (werkzeug, a thread, a random port on 127.0.0.1) and one
freshly migrated database with the demo data per test module. Every browser context records the
requests it made, and a test fails if any of them left 127.0.0.1 (no CDN, no web fonts).
Screenshots go to tests/e2e/artifacts/ (git-ignored).
"""
from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import demo_app

CHROMIUM = "/usr/bin/chromium"
#: G3 in the stack probe: the flags Debian's Chromium needs under Playwright here.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]
ARTIFACTS = Path(__file__).parent / "artifacts"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 1}
DESKTOP = {"viewport": {"width": 1280, "height": 860}, "device_scale_factor": 1}
DEMO_PASSWORDS = {"doctor": "demo-doctor-2025", "nurse": "demo-nurse-2025", "head": "demo-head-2025",
                  "quality": "demo-quality-2025", "admin": "demo-admin-2025", "anes": "demo-anes-2025",
                  "cardio": "demo-cardio-2025"}
CJK = re.compile(r"[\u4e00-\u9fff]")

requires_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                       reason=f"{CHROMIUM} is missing (scripts/setup installs the chromium package)")
#: Every browser test module starts with: pytestmark = E2E
E2E = [pytest.mark.e2e, requires_chromium]


@dataclass
class Server:
    url: str
    app: object
    facts: dict = field(default_factory=dict)
    #: Logged-in browser state per user name, so tests that are not about logging in skip the form.
    states: dict = field(default_factory=dict)

    def db(self):
        """An app context for reading or arranging data directly (commits are the caller's)."""
        return self.app.app_context()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(demo_snapshot, tmp_path_factory):
    """A real HTTP server on a free port of 127.0.0.1, over a fresh migrated database with demo data."""
    from werkzeug.serving import make_server

    app, demo = demo_app(demo_snapshot, tmp_path_factory.mktemp("e2e"))
    facts = seed(app, demo)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log lines in the test output
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    yield Server(url=f"http://127.0.0.1:{http.server_port}", app=app, facts=facts)
    http.shutdown()
    http.server_close()
    thread.join(5)
    from qcflow.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def seed(app, demo) -> dict:
    """Over the demo data of `make run` (`demo`: what its loader returned; a year of cases, calls and
    operations; the users anes and cardio; the grade-4 operation in five days that the booking gate stops),
    an API token for the quality office. Returns the facts the journeys start from."""
    from qcflow.auth import services as auth
    from qcflow.auth.models import User
    from qcflow.clinical.models import Operation
    from qcflow.core.actors import Actor
    from qcflow.core.time import now
    from qcflow.events.models import AdverseEvent
    from qcflow.extensions import db

    import sqlalchemy as sa

    at = now()
    with app.app_context():
        quality = db.session.scalar(sa.select(User).where(User.username == "quality"))
        _row, token = auth.create_token(quality, "e2e", days=30, actor=Actor.system("e2e"), now=at)
        db.session.commit()
        # The journeys take "the" anonymous case as the database returns it first (the very query of
        # tests/e2e/test_quality.py): give them that case's receipt code.
        anonymous = db.session.scalar(sa.select(AdverseEvent).where(
            AdverseEvent.mode == "anonymous", AdverseEvent.public_role.is_(None))).id
        operation = db.session.scalar(sa.select(Operation.id).where(Operation.his_id == "DEMO-O4"))
        overdue = db.session.scalar(sa.select(AdverseEvent.id).where(AdverseEvent.state == "submitted",
                                                                     AdverseEvent.triage_due_at < at)
                                    .order_by(AdverseEvent.id).limit(1))
        return {"receipt_code": demo.receipt_codes[anonymous], "receipt_codes": demo.receipt_codes,
                "quality_token": token, "operation_id": operation, "overdue_event_id": overdue}


@pytest.fixture
def contexts(browser, server):
    """Open browser contexts (phone or desktop, Chinese by default); afterwards, check that every
    request they made went to the test server on 127.0.0.1."""
    opened, requests = [], []

    def open_context(kind="desktop", locale="zh-CN", user=None):
        """A new context; with `user`, already logged in (the login form is used once per module and user)."""
        options = dict(PHONE if kind == "phone" else DESKTOP)
        context = browser.new_context(base_url=server.url, locale=locale, storage_state=server.states.get(user),
                                      **options)
        context.set_default_timeout(20_000)  # generous: CI machines are shared and slow
        context.on("request", lambda request: requests.append(request.url))
        opened.append(context)
        if user and user not in server.states:
            page = context.new_page()
            login(page, user)
            server.states[user] = context.storage_state()
            page.close()
        return context

    yield open_context
    for context in opened:
        context.close()
    outside = [u for u in requests if urlsplit(u).scheme not in ("data", "blob", "about")
               and urlsplit(u).hostname != "127.0.0.1"]
    assert requests and not outside, f"requests left the machine: {outside}"


def login(page, username: str, password: str | None = None):
    """Log in through the login page (and the second step, where asked) and land on the home page
    (or the `next` target)."""
    page.goto("/login")
    return login_here(page, username, password)


def login_here(page, username: str, password: str | None = None):
    """Fill in the login page the browser is on (e.g. after a session ended) and pass the second step."""
    page.fill("#username", username)
    page.fill("#password", password or DEMO_PASSWORDS[username])
    with page.expect_navigation():
        page.click("form button[type=submit]")
    pass_second_factor(page, username)
    assert "/login" not in page.url, page.inner_text("main")
    return page


#: The users' authenticator apps: (server URL, user name) → [base32 secret, last step used].
#: Demo users enrol at their first login in each module's fresh database, as at `make run`.
AUTHENTICATORS: dict[tuple[str, str], list] = {}


def pass_second_factor(page, username: str) -> None:
    """On the second login step, do what the user does with the phone: at the first login read the key
    the set-up page shows (as if scanned), then type the app's current code (tests/conftest.py:
    fresh_step, which never repeats a step the server has accepted: it refuses replays)."""
    from qcflow.auth import totp
    from tests.conftest import fresh_step

    parts = urlsplit(page.url)
    if parts.path not in ("/login/enrol", "/login/second-factor"):
        return
    phone_key = (f"{parts.scheme}://{parts.netloc}", username)
    if parts.path == "/login/enrol":
        AUTHENTICATORS[phone_key] = [page.inner_text("#totp-secret").replace(" ", ""), None]
    phone = AUTHENTICATORS[phone_key]
    phone[1] = fresh_step(phone[1])
    page.fill("#code", totp.code_at(phone[0], phone[1]))
    with page.expect_navigation():
        page.click("form button[type=submit]")


def sending_report(page):
    """Waits for the answer to the report form to load. The form's script keeps its key in the tab's history
    when it is sent (report.js), a same-document navigation that alone would end page.expect_navigation
    before the answer has arrived."""
    return page.expect_event("load")


def shot(page, name: str, full_page: bool = True) -> Path:
    """Save a screenshot of the page under tests/e2e/artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def check_accessible_form_fields(page) -> list[str]:
    """Every visible input, select and textarea has a label (bound or wrapping) or an aria-label."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('input, select, textarea'))
        .filter(el => el.type !== 'hidden' && el.type !== 'submit' && el.offsetParent !== null)
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
        .map(el => el.outerHTML.slice(0, 120))""")


def check_no_horizontal_scroll(page) -> bool:
    """Neither the page nor its navigation scrolls sideways (wide data tables may, inside themselves).

    Measured once the page has loaded: right after a click's navigation, under load, the stylesheet may not
    be applied yet, and an unstyled page of cards is a wide table."""
    page.wait_for_load_state("load")
    return page.evaluate("""() => [document.documentElement, ...document.querySelectorAll('header, nav, form, main > section')]
        .every(el => el.scrollWidth <= el.clientWidth + 1)""")


def api_call(server: Server, method: str, path: str, body: dict | None = None, token: str | None = None):
    """Call the JSON API over HTTP like the HIS or a script would; returns (status, JSON body)."""
    import json
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"null")
