"""One department rule for every list, filter, indicator, analysis and export (`department_for`).

Before, seven places decided it with different answers: a department head asking for another
department got a 404 from the indicators, an empty 200 from the case list, and the quality office
asking for a department that does not exist got a 422 from one page, a 404 from another and an
empty queue from a third. Now: another department is a 404, an unknown one a 422 naming the
parameter, the own one (and, for the quality office, any) a 200 — on every route that takes one.
The API routes are read from the OpenAPI document, so a new filter is covered when it is added.
"""
from __future__ import annotations

import pytest

UNKNOWN = 999_999
CODE = "ae_per_100_discharges"
#: Pages with a department filter (the API's come from its document).
PAGES = ["/events?department_id={d}", "/followup/queue?department={d}", "/indicators?department={d}",
         f"/indicators/{CODE}?department={{d}}", "/reports/analysis?department={d}",
         "/followup/calls?department={d}", "/followup/plans?department={d}"]


#: Filters of hospital-wide lists, readable by every role across departments: the department narrows the list, it
#: does not scope what one may read (the case library's de-identified lessons, docs/decisions.md).
HOSPITAL_WIDE = {"/api/v1/lessons"}


def department_routes(app):
    """(path template, parameter) of every API GET with a department parameter."""
    from qcflow.extensions import api

    found = []
    with app.app_context():
        for path, operations in api.spec.to_dict()["paths"].items():
            parameters = [p["name"] for p in operations.get("get", {}).get("parameters", []) if p.get("in") == "query"]
            for name in parameters:
                if name in ("department", "department_id"):
                    found.append((path.replace("{code}", CODE), name))
    return found


def test_every_department_filter_gives_the_same_answers(app, world, role_client):
    own, other = world["A"]["department"].id, world["B"]["department"].id
    wrong = wrong_answers(app, role_client, {"dept_head": {own: 200, other: 404, UNKNOWN: 422},
                                             "quality": {own: 200, other: 200, UNKNOWN: 422}})
    assert not wrong, "\n".join(wrong)


def wrong_answers(app, role_client, expected: dict) -> list[str]:
    """Every department route and page asked by each role for each department: the answers that are not
    `expected` ({role: {department: status}}), and the 422s that do not name the parameter."""
    routes = department_routes(app)
    assert len(routes) >= 10, routes  # events, queue, indicators ×3, analysis, exports ×4
    wrong = []
    for role, answers in expected.items():
        client = role_client(role)
        for path, name in routes:
            for department, status in answers.items():
                status = 200 if path in HOSPITAL_WIDE and status == 404 else status
                response = client.get(f"{path}?{name}={department}")
                response.get_data()  # a download is streamed: read it whole, as a browser would
                response.close()
                if response.status_code != status:
                    wrong.append(f"{role} {path}?{name}={department} → {response.status_code}, want {status}")
                elif status == 422 and name not in (response.json.get("errors") or {}):
                    wrong.append(f"{role} {path}?{name}={department}: the 422 does not name {name}: {response.json}")
        for page in PAGES:
            for department, status in answers.items():
                got = client.get(page.format(d=department)).status_code
                if got != status:
                    wrong.append(f"{role} page {page.format(d=department)} → {got}, want {status}")
    return wrong


@pytest.mark.parametrize("role", ["nurse", "doctor"])
def test_enrolment_in_another_department_is_404_and_an_unknown_one_422(world, role_client, role):
    from tests.conftest import csrf_from

    client = role_client(role)
    token = {"X-CSRFToken": csrf_from(client, "/account")}
    body = {"patient_id": world["A"]["patient"].id, "pathway": "four_level_surgery", "source_type": "manual",
            "anchor_at": "2026-01-05T09:00:00+08:00"}
    other = client.post("/api/v1/followup/plans", headers=token,
                        json={**body, "department_id": world["B"]["department"].id})
    unknown = client.post("/api/v1/followup/plans", headers=token, json={**body, "department_id": UNKNOWN})
    if role == "doctor":  # the route is for the follow-up staff
        assert (other.status_code, unknown.status_code) == (403, 403)
        return
    assert other.status_code == 404, other.json
    assert unknown.status_code == 422 and "department_id" in unknown.json["errors"], unknown.json
