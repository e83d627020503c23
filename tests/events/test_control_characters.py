"""Free text of cases, messages and lessons holds no control characters or bidirectional overrides: an escape
sequence or a right-to-left override would reach the CSV export, a terminal or the page reading otherwise than it
is stored. Long text keeps its line breaks and tabs."""
from datetime import timedelta

import pytest
from marshmallow import ValidationError, fields, validate

from qcflow.events import schemas as event_schemas
from qcflow.events.lessons import schemas as lesson_schemas

SCHEMAS = [event_schemas.ReportIn, event_schemas.DraftIn, event_schemas.PublicReportIn, event_schemas.TransitionIn,
           event_schemas.ActionIn, event_schemas.ActionTransitionIn, event_schemas.MessageIn,
           event_schemas.ReceiptLookupIn, event_schemas.ReceiptReplyIn, lesson_schemas.LessonIn,
           lesson_schemas.LessonUpdateIn, lesson_schemas.LessonTransitionIn]
TEXT_FIELDS = [(schema, name) for schema in SCHEMAS for name, field in schema._declared_fields.items()
               if isinstance(field, fields.String) and any(isinstance(v, validate.Length) for v in field.validators)]
BAD = ["abcde\x01\x02", "abcde\x1b[31mred", "abcde\u202eevil", "abcde\x7f", "abcde\x85", "abcde\u2066x\u2069", "ab\x00cde"]


def test_every_text_field_of_these_schemas_is_listed():
    assert len(TEXT_FIELDS) > 30 and (event_schemas.PublicReportIn, "description") in TEXT_FIELDS


@pytest.mark.parametrize("schema, name", TEXT_FIELDS, ids=lambda x: getattr(x, "__name__", x))
def test_control_characters_and_bidi_overrides_are_refused_in_every_text_field(ctx, schema, name):
    for value in BAD:
        with pytest.raises(ValidationError) as refused:
            schema().load({name: value}, partial=True)
        assert name in refused.value.messages, (name, value)


@pytest.mark.parametrize("schema, name", [(event_schemas.ReportIn, "description"),
                                          (event_schemas.PublicReportIn, "description"),
                                          (event_schemas.TransitionIn, "message"),
                                          (event_schemas.ReceiptReplyIn, "message"),
                                          (lesson_schemas.LessonIn, "what_happened")])
def test_long_text_keeps_its_line_breaks_and_tabs(ctx, schema, name):
    assert schema().load({name: "第一行\r\n第二行\t完"}, partial=True)[name] == "第一行\r\n第二行\t完"


def test_a_short_field_takes_no_line_break(ctx):
    with pytest.raises(ValidationError):
        event_schemas.ActionIn().load({"title": "培训\n计划"}, partial=True)


def test_the_public_form_refuses_an_escape_sequence_and_files_nothing(clients, hospital):
    import re

    from qcflow.events.models import AdverseEvent
    from tests.events.test_intake import rows

    client = clients("anonymous")
    page = client.get("/report/patient").get_data(as_text=True)
    form = {**dict(re.findall(r'name="(csrf_token|form_key)" value="([^"]+)"', page)),
            "public_role": "family", "department_id": str(hospital["surgery"].id), "occurred_on": "2026-03-01",
            "description": "abc\x01\x02\x1b[31mred\u202eevil\x7f zzzzz", "wants_feedback": "1"}
    answer = client.post("/report/patient?lang=en", data=form)
    assert answer.status_code == 422 and "Control characters" in answer.get_data(as_text=True)
    assert rows(AdverseEvent) == []


def test_a_reply_by_receipt_with_control_characters_is_refused(hospital, event_now, report_body):
    from qcflow.core.actors import Actor
    from qcflow.core.errors import Unprocessable
    from qcflow.events import services

    event, code = services.file_report(report_body(occurred_at=event_now - timedelta(hours=3),
                                                   discovered_at=event_now - timedelta(hours=2)),
                                       mode="anonymous", actor=Actor.anonymous(), now=event_now)
    with pytest.raises(Unprocessable) as refused:
        services.reply_by_receipt(code, "是\x1b[2J的", now=event_now)
    assert "message" in refused.value.errors
    assert services.messages(event) == []
    services.reply_by_receipt(code, "是的\n谢谢", now=event_now)
    assert [m.body for m in services.messages(event)] == ["是的\n谢谢"]
