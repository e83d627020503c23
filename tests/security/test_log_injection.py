"""I4: input written into a log line cannot forge another line (ASVS 16.4.1)."""
import io
import logging

from hypothesis import HealthCheck, given, settings, strategies as st


def log_line(logger_name: str, message: str, *args) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_forged_line_in_a_value_stays_on_one_escaped_line(app):
    forged = "GS\nINFO qcflow.auth user admin logged in\r\x1b[31m\u2028"
    text = log_line("qcflow.followup.services", "no department for follow-up of %s %s; not enrolled", forged, 42)
    assert text.count("\n") == 1 and "\r" not in text and "\x1b" not in text and "\u2028" not in text
    assert "GS\\nINFO qcflow.auth user admin logged in\\r\\x1b[31m\\u2028" in text
    assert text.rstrip("\n").endswith("42; not enrolled")


def test_other_libraries_log_lines_are_escaped_too(app):
    text = log_line("gunicorn.error", "%(path)s failed", {"path": "/x\nCRITICAL forged"})
    assert text == "WARNING gunicorn.error /x\\nCRITICAL forged failed\n"


def test_numbers_keep_their_format(app):
    assert log_line("qcflow.x", "%d calls, %.1f%%", 12, 99.5) == "WARNING qcflow.x 12 calls, 99.5%\n"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text())
def test_any_value_gives_exactly_one_line_without_control_characters(app, value):
    text = log_line("qcflow.events", "report %s", value)
    assert text.endswith("\n") and text.count("\n") == 1
    assert not any(ord(c) < 32 or c in "\x7f\x85\u2028\u2029" for c in text[:-1])
