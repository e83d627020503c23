"""Optional webhook: a JSON POST per notification, sent after commit, dropped on rollback."""
from __future__ import annotations

import json
import logging
import threading
import urllib.request

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
PENDING = "qcflow_webhooks"


def queue_webhook(payload: dict) -> None:
    if not has_app_context() or not current_app.config.get("WEBHOOK_URL"):
        return
    from qcflow.extensions import db

    db.session().info.setdefault(PENDING, []).append(
        (current_app.config["WEBHOOK_URL"], current_app.config["WEBHOOK_TIMEOUT_SECONDS"], payload)
    )


def post(url: str, timeout: float, payload: dict) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except OSError as error:
        log.warning("webhook %s failed: %s", url, error)


@sa.event.listens_for(Session, "after_commit")
def _send(session: Session) -> None:
    for url, timeout, payload in session.info.pop(PENDING, []):
        # Off the request thread: a slow receiver must not slow the user down.
        threading.Thread(target=post, args=(url, timeout, payload), daemon=True).start()


@sa.event.listens_for(Session, "after_soft_rollback")
def _drop(session: Session, previous_transaction) -> None:
    session.info.pop(PENDING, None)
