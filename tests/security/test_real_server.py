"""No server error through the real server: gunicorn with the shipped settings (scripts/gunicorn.conf.py).

Flask's test client runs a response's body inside the request, so a streamed body that still needs the
request (its language, the database session) works in tests and fails behind gunicorn. These tests start
gunicorn on a free port against the test's SQLite database (the security fixtures' two departments),
with a bearer token per role, and check:

- the CSV and XLSX exports download, in Chinese and in English, by token and from the /reports page;
- dates at year 1 and 9999, `month=0000-01`, a lone surrogate in every string field of one route per
  domain and JSON nested 100 000 deep get a 4xx JSON answer with a message, and nothing is written;
- Schemathesis, as every role (anonymous included), finds no 5xx.
"""
from __future__ import annotations

import csv
import io
import json
import re
import urllib.error
import urllib.request
import zipfile

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.openapi import from_url

from tests.conftest import login
from tests.security.conftest import ROLES, gunicorn

SECRET_KEY = "test-secret"  # the test app's: a session cookie made by the test client is valid on the server

#: Examples per operation and mode. The default run fuzzes each operation as one of the six roles (in turn);
#: the `slow` variant (make test-slow) fuzzes every operation as every role, with twice as many examples.
FUZZ_EXAMPLES = 2
SLOW_EXAMPLES = 4

HEADER = {"events": {"zh": "编号", "en": "Reference"}, "followup": {"zh": "随访任务编号", "en": "Task"}}


def send(base, method, path, body=None, headers=None, raw: bytes | None = None, cookies: dict | None = None):
    """(status, content type, body bytes) of one request; HTTP errors are answers, not exceptions.
    `cookies` is updated from the answer's Set-Cookie, as a browser would."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json", **(headers or {})}
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    request = urllib.request.Request(base + path, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        answer = error.code, error.headers, error.read()
    if cookies is not None:
        for line in answer[1].get_all("Set-Cookie") or []:
            name, _sep, rest = line.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
    return answer[0], answer[1].get("Content-Type", ""), answer[2]


def surrogate_json(body) -> bytes:
    """The body as JSON text with a lone surrogate kept as the escape a client sends (\\ud800)."""
    return json.dumps(body, ensure_ascii=True).encode()


@pytest.fixture
def server(world, database_url, tmp_path, token_for):
    from qcflow.extensions import db

    tokens = {role: ({} if role == "anonymous" else token_for(role)) for role in ROLES}
    db.session.commit()
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(database_url, tmp_path, log_path, workers=2, QCFLOW_SECRET_KEY=SECRET_KEY) as running:
        running.tokens = tokens
        running.log_path = log_path
        yield running
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-5000:]


def read_export(fmt: str, body: bytes) -> list[list[str]]:
    """The rows of a downloaded CSV (UTF-8 with a BOM), or of an XLSX its header row (inline strings)."""
    if fmt == "csv":
        assert body.startswith(b"\xef\xbb\xbf")
        return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    sheet = zipfile.ZipFile(io.BytesIO(body)).read("xl/worksheets/sheet1.xml").decode()
    first_row = re.search(r"<row [^>]*>(.*?)</row>", sheet).group(1)
    return [re.findall(r"<t[^>]*>([^<]*)</t>", first_row)]


def test_exports_download_through_the_real_server_in_chinese_and_english(server, app, world):
    """Every export by token, in both languages, and every export link of the /reports page (session)."""
    base = server.base_url
    for kind in ("events", "followup"):
        for fmt in ("csv", "xlsx"):
            for lang in ("zh", "en"):
                path = f"/api/v1/exports/{kind}.{fmt}?lang={lang}"
                status, content_type, body = send(base, "GET", path, headers=server.tokens["quality"])
                assert status == 200, (path, body[:300])
                assert content_type.startswith("text/csv" if fmt == "csv" else "application/vnd.openxmlformats")
                rows = read_export(fmt, body)
                assert rows[0][0] == HEADER[kind][lang], (path, rows[0][:3])
    rows = read_export("csv", send(base, "GET", "/api/v1/exports/events.csv?lang=en",
                                   headers=server.tokens["dept_head"])[2])
    assert world["A"]["event"].reference in [row[0] for row in rows[1:]]

    browser = app.test_client()
    assert login(browser, "head").status_code == 302
    cookies = {"qcflow_session": browser.get_cookie("qcflow_session").value}
    for lang in ("zh", "en"):  # the browser's language is the one last chosen on a page
        status, _type, page = send(base, "GET", f"/reports?lang={lang}", cookies=cookies)
        assert status == 200
        links = re.findall(r'href="(/api/v1/exports/[^"]+)"', page.decode())
        assert len(links) == 4, links
        for link in links:
            status, _type, body = send(base, "GET", link.replace("&amp;", "&"), cookies=cookies)
            assert status == 200, (link, body[:300])
            kind, fmt = re.search(r"exports/(\w+)\.(\w+)", link).groups()
            assert read_export(fmt, body)[0][0] == HEADER[kind][lang]


def table_counts() -> dict:
    """Rows per table (the session's view is refreshed: the server wrote through its own connections)."""
    from qcflow.extensions import db

    db.session.rollback()
    return {table.name: db.session.scalar(sa.select(sa.func.count()).select_from(table))
            for table in db.metadata.sorted_tables}


def bad_inputs(world) -> list[tuple[str, str, str, object]]:
    """(role, method, path, body) per bad input; a body of bytes is sent as it is."""
    a = world["A"]
    department = a["department"].id
    discussion, task, event = a["discussion"], a["task"], a["event"]
    report = {"category_code": "medication", "subcategory_code": "wrong_dose", "reporter_grade": "III",
              "care_stage": "medication", "occurred_at": "2026-03-01T09:30:00+08:00",
              "discovered_at": "2026-03-01T10:00:00+08:00", "location": "5病区", "department_id": department,
              "description": "剂量错误。", "immediate_actions": "停药", "clinical_state": "稳定"}
    encounter = {"his_id": "E-NEW", "patient_his_id": "P-GS", "department_code": "GS",
                 "admitted_at": "2026-03-01T09:30:00+08:00", "discharged_at": "2026-03-02T09:30:00+08:00"}
    patient = {"his_id": "P-NEW", "mrn": "MRN-NEW", "name": "新患者", "sex": "F"}
    new_discussion = {"kind": "case_review", "event_id": event.id, "question": "复盘", "due_at": "2026-03-09T10:00:00+08:00"}
    enrol = {"patient_id": a["patient"].id, "pathway": "day_surgery", "department_id": department,
             "anchor_at": "2026-03-01T10:00:00+08:00"}
    attempt = {"channel": "phone", "result": "no_answer", "note": "未接"}
    cases = []
    for year_1, year_9999 in [("0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"),
                              ("0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-12:00"),
                              ("0001-01-01T00:00:00", "9999-12-31T23:59:59")]:
        for value in (year_1, year_9999):
            cases += [
                ("anonymous", "POST", "/api/v1/events", {**report, "occurred_at": value}),
                ("quality", "POST", "/api/v1/intake/encounters", {"items": [{**encounter, "admitted_at": value}],
                                                                   "strict": True}),
                ("quality", "POST", "/api/v1/mdt/discussions", {**new_discussion, "due_at": value}),
                ("dept_head", "POST", f"/api/v1/mdt/discussions/{discussion.id}/transitions",
                 {"action": "schedule", "version": discussion.version, "scheduled_at": value}),
                ("quality", "POST", "/api/v1/followup/plans", {**enrol, "anchor_at": value}),
                ("nurse", "POST", f"/api/v1/followup/tasks/{task.id}/reschedule",
                 {"version": task.version, "due_at": value, "reason": "患者要求"}),
            ]
    for day in ("0001-01-01", "9999-12-31"):
        cases += [
            ("quality", "GET", f"/api/v1/reports/analysis?from={day}", None),
            ("quality", "GET", f"/api/v1/reports/analysis?to={day}", None),
            ("quality", "GET", f"/api/v1/exports/events.csv?from={day}", None),
            ("quality", "GET", f"/api/v1/indicators?from={day}&to={day}", None),
            ("nurse", "GET", f"/api/v1/followup/queue?date={day}", None),
            ("quality", "POST", "/api/v1/intake/patients", {"items": [{**patient, "birth_on": day}], "strict": True}),
            ("nurse", "POST", f"/api/v1/followup/tasks/{task.id}/reschedule",
             {"version": task.version, "due_on": day, "reason": "患者要求"}),
        ]
    cases += [
        ("quality", "GET", "/api/v1/indicators/ae_per_100_discharges?month=0000-01", None),
        ("quality", "GET", "/api/v1/indicators/ae_per_100_discharges?month=9999-12", None),
        ("quality", "POST", "/api/v1/intake/census", {"items": [{"department_code": "GS", "month": "0000-01",
                                                                 "discharges": 3}], "strict": True}),
    ]
    # A lone surrogate in each string field of one route per domain (keys too).
    for role, path, body in [
        ("anonymous", "/api/v1/events", report),
        ("quality", "/api/v1/intake/patients", {"items": [patient], "strict": True}),
        ("quality", "/api/v1/mdt/discussions", new_discussion),
        ("nurse", f"/api/v1/followup/tasks/{task.id}/attempts", attempt),
        ("quality", "/api/v1/followup/plans", enrol),
    ]:
        fields = body["items"][0] if "items" in body else body
        for name, value in fields.items():
            if isinstance(value, str):
                changed = {**fields, name: value + "\ud800"}
                cases.append((role, "POST", path, surrogate_json({**body, "items": [changed]} if "items" in body
                                                                  else changed)))
        cases.append((role, "POST", path, surrogate_json({**body, "\udfff": 1})))
    deep = b"[" * 100_000 + b"]" * 100_000
    cases += [("anonymous", "POST", "/api/v1/events", deep), ("quality", "POST", "/api/v1/mdt/discussions", deep),
              ("quality", "POST", "/api/v1/intake/patients", b'{"items": ' + deep + b"}"),
              ("anonymous", "POST", "/api/v1/events", b'{"description": ' + b'{"a": ' * 65 + b"1" + b"}" * 66)]
    return cases


def test_bad_dates_surrogates_and_deep_nesting_are_refused_through_the_real_server(server, world):
    cases = bad_inputs(world)
    assert len(cases) > 80
    before = table_counts()
    wrong = []
    for role, method, path, body in cases:
        raw = body if isinstance(body, bytes) else None
        status, content_type, answer = send(server.base_url, method, path, None if raw else body,
                                            server.tokens[role], raw=raw)
        try:
            parsed = json.loads(answer)
        except ValueError:
            parsed = None
        message = parsed.get("message") or parsed.get("results") if isinstance(parsed, dict) else None
        if not (400 <= status < 500 and content_type.startswith("application/json") and message):
            wrong.append(f"{role} {method} {path} {str(body)[:120]}: {status} {answer[:300]!r}")
    assert wrong == [], "\n".join(wrong)
    after = table_counts()
    assert {k: (before[k], after[k]) for k in before if before[k] != after[k]} == {}


def test_a_lone_surrogate_or_deep_json_gets_a_translated_400_naming_the_problem(server):
    base, quality = server.base_url, server.tokens["quality"]
    status, _type, body = send(base, "POST", "/api/v1/mdt/discussions?lang=en", headers=quality,
                               raw=surrogate_json({"kind": "case_review", "question": "\ud800"}))
    assert status == 400 and "surrogate" in json.loads(body)["message"]
    status, _type, body = send(base, "POST", "/api/v1/mdt/discussions", headers=quality,
                               raw=b"[" * 100_000 + b"]" * 100_000)
    assert status == 400 and "嵌套" in json.loads(body)["message"]
    status, _type, body = send(base, "GET", "/api/v1/reports/analysis?from=9999-12-31&lang=en", headers=quality)
    assert status == 422 and json.loads(body)["errors"]["from"] == ["Enter a date between the years 1900 and 2200."]


def fuzz(base_url: str, headers: dict, examples: int, share: tuple[int, int] = (0, 1)) -> list[str]:
    """Schemathesis (positive and negative data) against the running server; returns the failures.
    `share` (k, n): only the operations whose place in the document is k modulo n."""
    schema = from_url(base_url + "/api/v1/openapi.json")
    schema.config.generation.update(with_security_parameters=False)
    failures = []
    turn, turns = share
    for place, result in enumerate(schema.get_all_operations()):
        if place % turns != turn:
            continue
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case):
                response = case.call(headers=headers, timeout=60)
                case.validate_response(response, checks=[checks.not_a_server_error], headers=headers)

            try:
                run()
            except Unsatisfiable:
                pass  # nothing to make invalid
            except BaseException as error:  # collect every operation's failure, then fail once
                if isinstance(error, KeyboardInterrupt):
                    raise
                failures.append(f"{operation.label} [{mode.value}]: {str(error)[:1500]}")
    return failures


def fuzz_every_role(server, examples: int, in_turn: bool = False) -> None:
    """Fuzz every operation as every role, or (`in_turn`) each operation as one role, the roles taking turns."""
    failures = []
    for place, role in enumerate(ROLES):
        share = (place, len(ROLES)) if in_turn else (0, 1)
        failures += [f"{role}: {failure}"
                     for failure in fuzz(server.base_url, server.tokens[role], examples, share)]
    assert failures == [], "\n\n".join(failures)


def test_fuzzing_every_operation_through_the_real_server_finds_no_server_error(server):
    fuzz_every_role(server, FUZZ_EXAMPLES, in_turn=True)


@pytest.mark.slow
def test_fuzzing_every_role_through_the_real_server_finds_no_server_error_long(server):
    fuzz_every_role(server, SLOW_EXAMPLES)
