"""Per-user limits on expensive reads: exports and PDFs (Z6, anti-automation against mass exfiltration).

Each use is a row (`rate_limit_hit`), committed before the work starts, so the limit holds across
every worker and host. `auth.jobs.purge_expired_sessions` deletes rows older than a day.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import wraps

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from flask_login import current_user

from qcflow.auth.models import RateLimitHit
from qcflow.core.errors import TooManyRequests
from qcflow.core.time import now as clock_now
from qcflow.extensions import db

#: Hits are kept this long; no bucket's window may be longer.
KEEP = timedelta(days=1)


def use(bucket: str, subject: str, *, now: datetime, limit: int, window: timedelta) -> None:
    """Count one use of `bucket` by `subject`; TooManyRequests once `limit` uses fall within `window`.

    The hit is written first and only hits up to it are counted, so of concurrent uses at the limit
    each sees at least the ones written before it. A refused use is not kept.
    """
    hit = RateLimitHit(bucket=bucket, subject=subject, at=now)
    db.session.add(hit)
    db.session.flush()
    used = db.session.scalar(
        sa.select(sa.func.count()).select_from(RateLimitHit).where(
            RateLimitHit.bucket == bucket, RateLimitHit.subject == subject,
            RateLimitHit.at > now - window, RateLimitHit.id <= hit.id))
    if used > limit:
        db.session.delete(hit)
        db.session.flush()
        minutes = int(window.total_seconds() // 60)
        raise TooManyRequests(
            _("You have reached the limit of %(limit)d downloads of this kind in %(minutes)d minutes. "
              "Wait a while and try again; ask an administrator if you need more.", limit=limit, minutes=minutes))


def rate_limited(bucket: str):
    """View decorator: count the current user's use of `bucket` (config RATE_LIMITS) before the work."""

    def decorator(view):
        @wraps(view)
        def limited(*args, **kwargs):
            limit, minutes = current_app.config["RATE_LIMITS"][bucket]
            try:
                use(bucket, str(current_user.id), now=clock_now(), limit=limit, window=timedelta(minutes=minutes))
            finally:
                db.session.commit()  # the hit (or its removal) is visible to every worker before the work
            return view(*args, **kwargs)

        limited.rate_limit_bucket = bucket  # kept by the decorators above (functools.wraps)
        return limited

    return decorator


def purge(now: datetime) -> int:
    """Delete hits older than any window."""
    return db.session.execute(sa.delete(RateLimitHit).where(RateLimitHit.at < now - KEEP)).rowcount
