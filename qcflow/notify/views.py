"""The notifications page and the inbox badge."""
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from qcflow.auth.permissions import authenticated
from qcflow.core.pagination import keyset_page
from qcflow.core.time import now
from qcflow.notify import services
from qcflow.notify.messages import texts

bp = Blueprint("notify", __name__)


@bp.app_context_processor
def inbox_badge():
    if current_user.is_authenticated:
        return {"unread_notifications": services.unread_count(current_user.id), "may_visit": may_visit}
    return {"unread_notifications": 0, "may_visit": may_visit}


def may_visit(path: str) -> bool:
    """Layout helper: whether a page exists and the current user may open it (drives the navigation).

    It reads the route's access declaration, so a link never shows for a page that would refuse the
    user, and links to pages still being built appear as soon as their route is registered.
    """
    try:
        endpoint, _args = current_app.url_map.bind("localhost").match(path, method="GET")
    except HTTPException:
        return False
    access = getattr(current_app.view_functions.get(endpoint), "qc_access", None)
    if access is None:
        return False
    if access.public:
        return True
    if not current_user.is_authenticated:
        return False
    return not access.roles or current_user.has_role(*access.roles)


@bp.get("/notifications")
@authenticated
def list_notifications():
    """Show my notifications, newest first."""
    before = request.args.get("before", type=int)
    group = request.args.get("group") if request.args.get("group") in ("escalation", "reminder") else None
    unread = request.args.get("unread") == "1"
    items, older = keyset_page(
        lambda n: services.inbox(current_user.id, limit=n, before_id=before, group=group, unread_only=unread),
        50, key=lambda notification: notification.id)
    return render_template("notify/list.html", items=items, older=older, group=group, unread=unread,
                           group_of=services.group_of, texts=texts)


@bp.post("/notifications/<int:notification_id>/read")
@authenticated
def read_notification(notification_id):
    """Mark a notification read and open what it points to."""
    row = services.mark_read(current_user.id, notification_id, now=now())
    return redirect(row.link or url_for("notify.list_notifications"))
