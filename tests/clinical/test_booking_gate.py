"""The four-level operation booking gate (Henan: 锁定四级手术目录……上传相关医疗文书后进行手术预约)."""
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests.events.test_intake import csrf

PLANNED = "2026-03-20T08:00:00+08:00"
PLANNED_AT = datetime.fromisoformat(PLANNED)


def push_operation(his, his_id, code, surgeon="S1", **extra):
    result = his.push("operations", [{"his_id": his_id, "encounter_his_id": "E1", "procedure_code": code,
                                      "surgeon_his_id": surgeon, "planned_at": PLANNED, **extra}]).json
    assert result["failed"] == 0, result
    return result["results"][0]["id"]


def preop_discussions(operation_id):
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    db.session.expire_all()
    return db.session.scalars(sa.select(Discussion).where(Discussion.operation_id == operation_id,
                                                          Discussion.kind == "preop_level4")).all()


def mark_signed(operation_id, signed_at):
    """The MDT module's sign-off is tested with the MDT; here only its result matters."""
    from qcflow.extensions import db
    from qcflow.mdt.models import Discussion

    db.session.execute(sa.update(Discussion).where(Discussion.operation_id == operation_id)
                       .values(state="signed", signed_at=signed_at, conclusion="同意手术", decision="proceed"))
    db.session.commit()


def book(client, operation_id, **extra):
    from qcflow.extensions import db
    from qcflow.clinical.models import Operation

    db.session.expire_all()
    version = db.session.get(Operation, operation_id).version
    return client.post(f"/api/v1/operations/{operation_id}/transitions",
                       json={"action": "book", "version": version, **extra},
                       headers={"X-CSRFToken": csrf(client)})


def test_planning_a_grade_four_operation_requests_its_preop_mdt_once(ctx, reference):
    operation_id = push_operation(reference, "O4", "52.7001")
    [discussion] = preop_discussions(operation_id)
    assert discussion.state == "requested" and discussion.due_at == PLANNED_AT
    reference.push("operations", [{"his_id": "O4", "encounter_his_id": "E1", "procedure_code": "52.7001",
                                   "surgeon_his_id": "S1", "planned_at": "2026-03-21T08:00:00+08:00"}])
    assert len(preop_discussions(operation_id)) == 1


def test_grade_four_without_a_signed_mdt_is_refused_with_409_saying_what_to_do(ctx, reference, quality_client):
    operation_id = push_operation(reference, "O4", "52.7001")
    response = book(quality_client, operation_id)
    assert response.status_code == 409
    assert response.json["code"] == "conflict" and len(response.json["missing"]) == 1
    assert "术前多学科讨论" in response.json["message"] and "30" in response.json["message"]


def test_signed_within_the_window_books(ctx, reference, quality_client):
    operation_id = push_operation(reference, "O4", "52.7001")
    mark_signed(operation_id, PLANNED_AT - timedelta(days=30))
    response = book(quality_client, operation_id)
    assert response.status_code == 200 and response.json["state"] == "booked"
    assert response.json["is_emergency_override"] is False


def test_signed_too_long_before_the_operation_has_expired(ctx, reference, quality_client):
    operation_id = push_operation(reference, "O4", "52.7001")
    mark_signed(operation_id, PLANNED_AT - timedelta(days=31))
    assert book(quality_client, operation_id).status_code == 409


def test_unauthorised_surgeon_is_refused_even_with_a_signed_mdt(ctx, reference, quality_client):
    reference.push("staff", [{"his_id": "S3", "name": "周新", "department_code": "GS", "specialty": "general_surgery"}])
    operation_id = push_operation(reference, "O4", "52.7001", surgeon="S3")
    mark_signed(operation_id, PLANNED_AT - timedelta(days=2))
    response = book(quality_client, operation_id)
    assert response.status_code == 409 and len(response.json["missing"]) == 1
    assert "周新" in response.json["message"] and "52.7001" in response.json["message"]


def test_expired_authorisation_does_not_count(ctx, reference, quality_client):
    reference.push("operations", [{"his_id": "O5", "encounter_his_id": "E1", "procedure_code": "52.7001",
                                   "surgeon_his_id": "S1", "planned_at": "2027-01-05T08:00:00+08:00"}])
    from qcflow.clinical.models import Operation
    from qcflow.extensions import db

    operation_id = db.session.scalar(sa.select(Operation.id).where(Operation.his_id == "O5"))
    mark_signed(operation_id, datetime(2027, 1, 1, tzinfo=timezone.utc))
    response = book(quality_client, operation_id)
    assert response.status_code == 409 and "52.7001" in response.json["message"]  # valid until 2026-12-31


def test_restricted_technology_is_managed_as_grade_four(ctx, reference, quality_client):
    operation_id = push_operation(reference, "O6", "00.9901")
    assert len(preop_discussions(operation_id)) == 1
    response = book(quality_client, operation_id)
    assert response.status_code == 409 and len(response.json["missing"]) == 2  # MDT and authorisation


def test_emergency_override_books_audits_and_tells_the_quality_office(ctx, reference, quality_client):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db
    from qcflow.notify.models import Notification

    operation_id = push_operation(reference, "O4", "52.7001")
    without_reason = book(quality_client, operation_id, emergency_override=True)
    assert without_reason.status_code == 422 and "override_reason" in without_reason.json["errors"]
    response = book(quality_client, operation_id, emergency_override=True, override_reason="腹腔大出血，急诊手术")
    assert response.status_code == 200 and response.json["state"] == "booked"
    assert response.json["is_emergency_override"] is True
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "operation.book")).one()
    assert "emergency_override" in entry.detail and "腹腔大出血" in entry.detail
    from qcflow.notify.messages import texts

    titles = [texts(n)[0] for n in db.session.scalars(sa.select(Notification).where(
        Notification.kind == "operation.emergency_override"))]
    # The procedure by its name (the reader cannot look a catalogue code up), the operation by its HIS id.
    assert titles and "O4" in titles[0] and "胰十二指肠切除术" in titles[0] and "52.7001" not in titles[0]


@pytest.mark.parametrize("code,authorised,status", [
    ("47.0101", False, 200),  # grade 2: no authorisation needed
    ("51.2301", True, 200),
    ("51.2301", False, 409),  # grade 3: the surgeon's authorisation is
])
def test_grades_one_to_three_book_without_mdt(ctx, reference, quality_client, code, authorised, status):
    from qcflow.clinical.models import Operation
    from qcflow.clinical.services import BookingCase, booking_reasons
    from qcflow.extensions import db

    operation_id = push_operation(reference, "O2", code, surgeon="S1" if authorised else "S2")
    reasons = booking_reasons(BookingCase.of(db.session.get(Operation, operation_id)))
    assert [reason.code for reason in reasons] == ([] if authorised or code == "47.0101" else ["not_authorised"])
    assert preop_discussions(operation_id) == []
    assert book(quality_client, operation_id).status_code == status


def test_grade_three_still_checks_the_authorisation(ctx, reference, quality_client):
    operation_id = push_operation(reference, "O3", "51.2301", surgeon="S2")
    response = book(quality_client, operation_id)
    assert response.status_code == 409 and "赵麻" in response.json["message"]


def test_perform_then_nothing_more_and_stale_versions_conflict(ctx, reference, quality_client):
    operation_id = push_operation(reference, "O2", "47.0101")
    booked = book(quality_client, operation_id).json
    path = f"/api/v1/operations/{operation_id}/transitions"
    headers = {"X-CSRFToken": csrf(quality_client)}
    assert quality_client.post(path, json={"action": "perform", "version": 1}, headers=headers).status_code == 409
    done = quality_client.post(path, json={"action": "perform", "version": booked["version"]}, headers=headers)
    assert done.status_code == 200 and done.json["performed_at"]
    late = quality_client.post(path, json={"action": "cancel", "version": done.json["version"]}, headers=headers)
    assert late.status_code == 409 and late.json["allowed_actions"] == []


def test_operation_page_explains_the_gate(ctx, reference, quality_client):
    operation_id = push_operation(reference, "O4", "52.7001")
    page = quality_client.get(f"/operations/{operation_id}").get_data(as_text=True)
    assert "术前多学科讨论" in page and 'name="emergency_override"' in page


def test_operation_page_does_not_offer_a_booking_the_gate_refuses(ctx, reference, quality_client):
    operation_id = push_operation(reference, "O3", "51.2301", surgeon="S2")
    page = quality_client.get(f"/operations/{operation_id}").get_data(as_text=True)
    assert "赵麻" in page and 'value="book"' not in page and 'value="cancel"' in page


def test_operation_page_offers_booking_once_the_gate_is_open(ctx, reference, quality_client):
    operation_id = push_operation(reference, "O3", "51.2301")
    page = quality_client.get(f"/operations/{operation_id}").get_data(as_text=True)
    assert 'id="gate"' in page and 'value="book"' in page and 'name="emergency_override"' not in page
    book(quality_client, operation_id)
    page = quality_client.get(f"/operations/{operation_id}").get_data(as_text=True)
    assert 'id="gate"' not in page and 'value="book"' not in page and 'value="perform"' in page


@pytest.mark.parametrize("code,signed,extra", [
    ("51.2301", False, {}),  # grade 3, authorised: the gate asks for the authorisation only
    ("52.7001", True, {}),  # grade 4 with its signed discussion
    ("52.7001", False, {"emergency_override": True, "override_reason": "腹腔大出血，急诊手术"}),
])
def test_a_booking_is_one_new_version_of_the_operation(ctx, reference, quality_client, code, signed, extra):
    """The gate is asked when the step is checked and again when it is applied; asking writes nothing, so
    the HIS that tracks versions sees one step as one new version (and the audit entry says the same)."""
    import json

    from qcflow.clinical.models import Operation
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    operation_id = push_operation(reference, "O5", code)
    if signed:
        mark_signed(operation_id, PLANNED_AT - timedelta(days=30))
    db.session.expire_all()
    before = db.session.get(Operation, operation_id).version
    response = book(quality_client, operation_id, **extra)
    assert response.status_code == 200, response.json
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "operation.book")).one()
    assert response.json["version"] == json.loads(entry.detail)["after"]["version"] == before + 1
