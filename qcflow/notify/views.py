"""The notifications page and the inbox badge."""
from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from qcflow.auth.permissions import authenticated
from qcflow.core.time import now
from qcflow.extensions import db
from qcflow.notify import services

bp = Blueprint("notify", __name__)


@bp.app_context_processor
def inbox_badge():
    if current_user.is_authenticated:
        return {"unread_notifications": services.unread_count(current_user.id)}
    return {"unread_notifications": 0}


@bp.get("/notifications")
@authenticated
def list_notifications():
    """Show my notifications, newest first."""
    before = request.args.get("before", type=int)
    items = services.inbox(current_user.id, before_id=before)
    return render_template("notify/list.html", items=items)


@bp.post("/notifications/<int:notification_id>/read")
@authenticated
def read_notification(notification_id):
    """Mark a notification read and open what it points to."""
    row = services.mark_read(current_user.id, notification_id, now=now())
    db.session.commit()
    return redirect(row.link or url_for("notify.list_notifications"))
