"""Notifications over the JSON API."""
from flask_login import current_user

from qcflow.auth.permissions import authenticated
from qcflow.core.api import Blueprint
from qcflow.core.pagination import keyset_page
from qcflow.core.schemas import CursorArgs
from qcflow.core.time import now
from qcflow.notify import services
from qcflow.notify.schemas import NotificationOut, NotificationPage

blp = Blueprint("notify_api", __name__, url_prefix="/api/v1/notifications", description="In-app notifications")


@blp.get("")
@authenticated
@blp.arguments(CursorArgs, location="query")
@blp.response(200, NotificationPage)
def list_notifications(args):
    """List my notifications, newest first."""
    items, next_cursor = keyset_page(lambda n: services.inbox(current_user.id, limit=n, before_id=args["cursor"]),
                                     args["limit"], key=lambda notification: notification.id)
    return {"items": items, "unread": services.unread_count(current_user.id), "next_cursor": next_cursor}


@blp.post("/<int:notification_id>/read")
@authenticated
@blp.response(200, NotificationOut)
@blp.alt_response(404, description="Not one of my notifications")
def read_notification(notification_id):
    """Mark one of my notifications read."""
    return services.mark_read(current_user.id, notification_id, now=now())
