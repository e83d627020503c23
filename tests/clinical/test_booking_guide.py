"""The curl examples of the HIS guide's booking sections (docs/his-integration.md) run as written (through the test client), and the
answer the guide shows is the answer qcflow gives."""
import json
import re
import shlex
from datetime import datetime, timedelta
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs/his-integration.md"


def examples():
    """Each ```bash block's curl command: (path, headers, body), and the ```json block after it, if any."""
    text = GUIDE.read_text(encoding="utf-8")
    text = text[text.index("## Asking before booking"):text.index("## Idempotency")]
    found = []
    for match in re.finditer(r"```bash\n(.*?)```(?:\s*```json\n(.*?)```)?", text, re.S):
        words = shlex.split(match.group(1).replace("\\\n", " "))
        headers = dict(h.split(": ", 1) for flag, h in zip(words, words[1:]) if flag == "-H")
        body = json.loads(words[words.index("-d") + 1])
        path = next(w for w in words if w.startswith("$QCFLOW")).removeprefix("$QCFLOW")
        found.append((path, headers, body, json.loads(match.group(2)) if match.group(2) else None))
    return found


@pytest.fixture
def guide_hospital(his, monkeypatch):
    """The guide's identifiers, and a server clock a week after its operations."""
    monkeypatch.setattr("qcflow.clinical.api.now", lambda: datetime.fromisoformat("2026-03-27T08:00:00+08:00"))
    pushes = {
        "procedures": [{"code": "52.7001", "name": "胰十二指肠切除术", "grade": 4},
                       {"code": "47.0101", "name": "阑尾切除术", "grade": 2}],
        "staff": [{"his_id": "S0042", "name": "李刀", "department_code": "GS"}],
        "authorisations": [{"staff_his_id": "S0042", "procedure_code": "52.7001", "valid_from": "2025-01-01"}],
        "patients": [{"his_id": "P000123", "mrn": "BA20260001", "name": "王小明", "sex": "M"}],
        "encounters": [{"his_id": e, "patient_his_id": "P000123", "department_code": "GS",
                        "admitted_at": "2026-03-15T08:00:00+08:00"} for e in ("E000456", "E000457")],
        "operations": [{"his_id": o, "encounter_his_id": e, "procedure_code": c, "surgeon_his_id": "S0042",
                        "planned_at": "2026-03-20T08:00:00+08:00"}
                       for o, e, c in (("O000789", "E000456", "52.7001"), ("O000790", "E000457", "47.0101"))],
    }
    for kind, items in pushes.items():
        assert his.push(kind, items).json["failed"] == 0, kind
    return his


def test_the_guides_examples_run_and_answer_as_shown(ctx, guide_hospital, quality_client):
    [(check_path, check_headers, check_body, shown), (intake_path, intake_headers, intake_body, _)] = examples()
    auth = {**guide_hospital.auth}
    asked = guide_hospital.post(check_path, json=check_body, headers={**check_headers, **auth})
    assert asked.status_code == 200
    answer = asked.json
    assert {k: v for k, v in answer.items() if k != "operation_id"} == {
        k: v for k, v in shown.items() if k != "operation_id"}
    pushed = guide_hospital.post(intake_path, json=intake_body, headers={**intake_headers, **auth})
    assert pushed.status_code == 200 and pushed.json["failed"] == 0, pushed.json
    from qcflow.clinical.models import Operation
    from qcflow.extensions import db
    from qcflow.notify.models import Notification

    db.session.expire_all()
    states = {o.his_id: (o.state, o.cancel_reason) for o in db.session.query(Operation)}
    assert states == {"O000789": ("performed", None), "O000790": ("cancelled", "患者要求推迟手术")}
    assert db.session.query(Notification).filter_by(kind="operation.performed_without_mdt").count() == 1
