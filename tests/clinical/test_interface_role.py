"""The HIS's own account holds the interface role: it sends rows and asks before booking, and reads or
does nothing else (no quality office reads, notifications or pages)."""
import pytest


@pytest.mark.parametrize("method,path", [
    ("get", "/api/v1/events"),
    ("get", "/api/v1/patients?mrn=BA001"),
    ("get", "/api/v1/followup/queue"),
    ("get", "/api/v1/indicators"),
    ("get", "/api/v1/mdt/discussions"),
    ("post", "/api/v1/operations/1/transitions"),
])
def test_the_interface_account_reads_and_does_nothing_but_the_intake(ctx, reference, method, path):
    response = getattr(reference, method)(path, headers=reference.auth, json={} if method == "post" else None)
    assert response.status_code == 403, (path, response.status_code)


def test_the_interface_account_sends_rows_and_asks_before_booking_and_is_told_nothing(ctx, reference):
    import sqlalchemy as sa

    from qcflow.auth.models import Role, User
    from qcflow.extensions import db
    from qcflow.notify.services import users_with_role

    assert reference.push("patients", [{"his_id": "P9", "mrn": "BA009", "name": "周九", "sex": "M"}]).status_code == 200
    asked = reference.post("/api/v1/operations/booking-check", headers=reference.auth,
                           json={"operation_his_id": "NOPE"})
    assert asked.status_code == 200 and asked.json["reasons"][0]["code"] == "operation_unknown"
    # It sees every department's operations: the answer does not speak of "your department".
    assert asked.json["reasons"][0]["message"]["en"] == "No operation with HIS id “NOPE”."
    # The quality office's notifications (a performed operation without its discussion…) never reach it.
    his_id = db.session.scalar(sa.select(User.id).where(User.username == "his"))
    assert his_id not in users_with_role(Role.QUALITY) and his_id not in users_with_role(Role.ADMIN)
