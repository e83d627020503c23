"""Bad input is a 4xx with a message a person can act on, in the request's language, never a 500: the
shared date fields, a query string that is not UTF-8, and error pages that cannot be rendered.
(The same inputs through gunicorn: test_real_server.py.)"""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from marshmallow import ValidationError

OUT_OF_RANGE = "Enter a date between the years 1900 and 2200."


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+00:00", "1899-12-31T23:59:59+00:00",
                                  "9999-12-31T23:59:59-12:00", "2201-01-01T00:00:00+08:00",
                                  # within the years as written, outside them as stored (UTC)
                                  "1900-01-01T00:00:00+14:00", "2200-12-31T23:59:59-14:00"])
def test_a_date_time_outside_1900_to_2200_is_refused_with_a_translated_message(app, text):
    from qcflow.core.schemas import DateTime

    with app.test_request_context("/?lang=en"):
        with pytest.raises(ValidationError) as refused:
            DateTime().deserialize(text)
        assert [str(m) for m in refused.value.messages] == [OUT_OF_RANGE]
    with app.test_request_context("/?lang=zh"):
        with pytest.raises(ValidationError) as refused:
            DateTime().deserialize(text)
        assert [str(m) for m in refused.value.messages] == ["请输入 1900 年至 2200 年之间的日期。"]


def test_a_date_time_is_loaded_as_utc_and_dumped_as_iso_8601(app):
    from qcflow.core.schemas import DateTime

    loaded = DateTime().deserialize("2200-12-31T06:30:00-12:00")
    assert loaded == datetime(2200, 12, 31, 18, 30, tzinfo=timezone.utc) and loaded.tzinfo is timezone.utc
    assert DateTime().serialize("at", {"at": loaded}) == "2200-12-31T18:30:00+00:00"


@pytest.mark.parametrize("field, text", [("Date", "0001-01-01"), ("Date", "9999-12-31"), ("Month", "0000-01"),
                                         ("Month", "9999-12"), ("Month", "2026-13"), ("Month", "2026-1")])
def test_a_date_or_month_out_of_range_or_malformed_is_refused(app, field, text):
    from qcflow.core import schemas

    with app.test_request_context("/?lang=en"), pytest.raises(ValidationError):
        getattr(schemas, field)().deserialize(text)


def test_a_month_is_loaded_as_its_first_day(app):
    from qcflow.core.schemas import Month

    assert Month().deserialize("2026-02") == date(2026, 2, 1)
    assert Month().serialize("m", {"m": date(2026, 2, 1)}) == "2026-02"


@pytest.mark.parametrize("path", ["/indicators/ae_per_100_discharges?month=0000-01&lang=en",
                                  "/reports/analysis?from=0001-01-01&lang=en",
                                  "/reports/analysis?to=9999-12-31&lang=en"])
def test_pages_refuse_out_of_range_dates_with_a_422_page(role_client, path):
    response = role_client("quality").get(path)
    assert response.status_code == 422, response.get_data(as_text=True)[:500]
    assert OUT_OF_RANGE in response.get_data(as_text=True)


NOT_UTF8 = "category=\xed\xa0\x80"  # the bytes of an encoded surrogate, as the WSGI server passes them on


def test_a_query_string_that_is_not_utf8_is_a_translated_400(app, role_client, token_for):
    client = app.test_client()
    response = client.get("/api/v1/events", headers=token_for("quality"), environ_overrides={"QUERY_STRING": NOT_UTF8})
    assert response.status_code == 400 and response.json["code"] == "bad_request"
    assert response.json["message"] == "网址中含有不是 UTF-8 文本的字节，请检查链接。"
    page = role_client("quality").get("/events", environ_overrides={"QUERY_STRING": NOT_UTF8})
    assert page.status_code == 400 and "网址中含有不是 UTF-8 文本的字节" in page.get_data(as_text=True)


def test_an_error_that_cannot_be_rendered_still_answers_in_the_error_shape(app, world, monkeypatch):
    from qcflow.core import errors

    def broken(*args, **kwargs):
        raise RuntimeError("template store unavailable")

    monkeypatch.setattr(errors, "render_template", broken)
    monkeypatch.setattr(errors, "jsonify", broken)
    client = app.test_client()
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert errors.PLAIN_MESSAGE in page.get_data(as_text=True)
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.json == {"code": "not_found", "message": errors.PLAIN_MESSAGE}


def test_a_reference_csv_the_csv_module_cannot_read_is_a_400_and_nothing_is_stored(role_client):
    import io

    import sqlalchemy as sa

    from qcflow.clinical.models import Staff
    from qcflow.extensions import db
    from tests.conftest import csrf_from

    admin = role_client("admin")
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Staff))
    data = b"his_id,name,department_code\nS-NEW," + b"x" * 200_000 + b",GS\n"
    response = admin.post("/admin/reference/staff?lang=en", content_type="multipart/form-data",
                          data={"csrf_token": csrf_from(admin, "/admin/reference/staff"),
                                "file": (io.BytesIO(data), "staff.csv")})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "longer than 128 KiB" in page and "field larger than field limit" not in page
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Staff)) == before


@pytest.mark.parametrize("text", ["2026-01-01T00:00:00|0|0|2026-01-01T00:00:00|1",  # no offset
                                  "0001-01-01T00:00:00+00:00|0|0|0001-01-01T00:00:00+00:00|1",
                                  "9999-12-31T23:59:59+00:00|1|1|9999-12-31T23:59:59-12:00|1"])
def test_a_forged_queue_cursor_is_a_422_naming_the_cursor(app, world, token_for, text):
    import base64

    cursor = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    response = app.test_client().get(f"/api/v1/followup/queue?cursor={cursor}&lang=en", headers=token_for("nurse"))
    assert response.status_code == 422, response.json
    assert response.json["errors"]["cursor"] == ["Not a cursor from this queue; start again without it."]
