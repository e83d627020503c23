"""The sending job (every minute): invite the calls whose window opened, end the invitations whose window or call
closed, then send what is due. Each step commits; the messages are taken under a lease that is committed before
any of them leaves, and each message's outcome is committed on its own (one failure never stops the others)."""
from __future__ import annotations

import logging
from datetime import datetime

from qcflow.extensions import db
from qcflow.followup.invitations import senders, services

log = logging.getLogger(__name__)


def send_invitations(now: datetime) -> str:
    """Invite, settle, send due invitations and reminders; returns what it did."""
    problem = senders.config_problem()
    ended = services.settle_due(now)
    db.session.commit()
    if problem or not services.enabled():
        return f"not sending ({problem or 'INVITATION_SENDERS or INVITATION_LINK_BASE not set'}); ended {ended}"
    invited = services.invite_due(now)
    db.session.commit()
    taken = services.take_due(now)
    db.session.commit()  # the lease: a second run, or this one restarted after a crash, does not send them again
    sent = failed = 0
    for outgoing in taken:
        result = senders.send(outgoing, senders.text_of(outgoing))
        try:
            services.record_send(outgoing.invitation_id, outgoing.kind, ok=result.ok,
                                 provider_message_id=result.provider_message_id, detail=result.detail, now=now)
            db.session.commit()
        except Exception:  # the message went (or not) whatever; the others must still go
            db.session.rollback()
            log.exception("the outcome of invitation %s's %s could not be recorded", outgoing.invitation_id,
                          outgoing.kind)
            failed += 1
            continue
        sent += result.ok
        failed += not result.ok
        if not result.ok:
            log.warning("invitation %s's %s not sent: %s", outgoing.invitation_id, outgoing.kind, result.detail)
    return f"invited {invited}, ended {ended}, sent {sent}, failed {failed}"
