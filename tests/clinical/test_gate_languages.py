"""The booking gate's refusal reads in one language: English without Chinese, Chinese without English."""
import re

from tests.clinical.test_booking_gate import book, push_operation


def test_the_gate_refusal_has_no_chinese_in_english_and_names_the_discussion_in_chinese(ctx, reference, quality_client):
    from qcflow.extensions import db
    from qcflow.clinical.models import Operation
    from tests.events.test_intake import csrf

    operation_id = push_operation(reference, "O4", "52.7001")
    chinese = book(quality_client, operation_id)
    assert chinese.status_code == 409 and "术前多学科讨论" in chinese.json["message"]
    db.session.expire_all()
    version = db.session.get(Operation, operation_id).version
    english = quality_client.post(f"/api/v1/operations/{operation_id}/transitions?lang=en",
                                  json={"action": "book", "version": version}, headers={"X-CSRFToken": csrf(quality_client)})
    assert english.status_code == 409
    message = english.json["message"]
    assert "pre-operative MDT discussion" in message
    assert not re.search(r"[\u4e00-\u9fff]", message), message
