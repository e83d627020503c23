"""Fixtures for clinical tests: an API client allowed to push HIS data, and reference data."""
import pytest

from tests.conftest import logged_in


@pytest.fixture
def his(app, create_department, create_user, runner):
    """A test client authenticated as the HIS interface (bearer token of an account with the interface role)."""
    from qcflow.extensions import db

    create_department(code="GS", name="普通外科")
    create_department(code="MED", name="医务科", kind="functional")
    create_department(code="ANES", name="麻醉科")
    create_user(username="his", roles=("interface",))
    db.session.commit()
    token = runner.invoke(args=["qcflow", "tokens", "create", "--username", "his"]).output.strip().splitlines()[-1]
    client = app.test_client()

    def push(kind, items, **extra):
        return client.post(f"/api/v1/intake/{kind}", json={"items": items, **extra},
                           headers={"Authorization": f"Bearer {token}"})

    client.push = push
    client.auth = {"Authorization": f"Bearer {token}"}
    return client


@pytest.fixture
def reference(his):
    """A catalogue with grades 2–4 and a restricted technology, a surgeon and an authorisation."""
    assert his.push("procedures", [
        {"code": "47.0101", "name": "阑尾切除术", "grade": 2, "is_day_surgery_allowed": True},
        {"code": "51.2301", "name": "腹腔镜胆囊切除术", "grade": 3},
        {"code": "52.7001", "name": "胰十二指肠切除术", "grade": 4},
        {"code": "00.9901", "name": "机器人辅助手术", "grade": 3, "is_restricted_technology": True},
    ]).json["failed"] == 0
    assert his.push("staff", [
        {"his_id": "S1", "name": "李刀", "department_code": "GS", "specialty": "general_surgery"},
        {"his_id": "S2", "name": "赵麻", "department_code": "ANES", "specialty": "anaesthesia"},
    ]).json["failed"] == 0
    assert his.push("authorisations", [
        {"staff_his_id": "S1", "procedure_code": "51.2301", "valid_from": "2025-01-01"},
        {"staff_his_id": "S1", "procedure_code": "52.7001", "valid_from": "2025-01-01", "valid_until": "2026-12-31"},
    ]).json["failed"] == 0
    assert his.push("patients", [
        {"his_id": "P1", "mrn": "BA001", "name": "王小明", "sex": "M", "birth_on": "1960-05-01",
         "phone": "13812345678", "id_number": "110101196005011234"},
    ]).json["failed"] == 0
    assert his.push("encounters", [
        {"his_id": "E1", "patient_his_id": "P1", "department_code": "GS", "admitted_at": "2026-03-01T08:00:00+08:00"},
    ]).json["failed"] == 0
    return his


@pytest.fixture
def quality_client(app, create_user, his):
    from qcflow.extensions import db

    create_user(username="qc", roles=("quality",))
    db.session.commit()
    return logged_in(app, "qc")
