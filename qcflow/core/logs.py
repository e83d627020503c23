"""Log lines cannot be forged through input (I4, ASVS 16.4.1).

Values a log call formats (`log.info("… %s", value)`) are escaped: control characters, including
CR/LF and the Unicode line separators, become `\\n`, `\\x1b`, `\\u2028`…, so a value cannot start a
line of its own or colour a terminal. Numbers pass unchanged. Installed once per process by
`create_app`, for every logger (ours, Flask's, gunicorn's, the scheduler's).
"""
from __future__ import annotations

import logging
import numbers
import re
from collections.abc import Mapping

CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def escape(text: str) -> str:
    return CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def _safe(value):
    if value is None or isinstance(value, numbers.Number):
        return value
    return escape(value if isinstance(value, str) else str(value))


def install_log_escaping() -> None:
    """Wrap the process's log-record factory (once) so every record's arguments are escaped."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "escapes_controls", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        if isinstance(record.args, Mapping):
            record.args = {key: _safe(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_safe(value) for value in record.args)
        return record

    factory.escapes_controls = True
    logging.setLogRecordFactory(factory)
