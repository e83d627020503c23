"""Scheduled entry points of the auth domain."""
from datetime import datetime, timedelta

from flask import current_app

from qcflow.auth import ratelimit, services


def purge_expired_sessions(now: datetime) -> str:
    """Delete ended sessions, login failures older than every throttling window and old rate-limit hits."""
    config = current_app.config
    limits = services.login_limits(config["LOGIN_THROTTLE"])
    removed = services.purge_expired(
        now, idle=timedelta(minutes=config["SESSION_IDLE_MINUTES"]),
        failure_window=max(backoff.window for backoff in limits.values()),
    )
    removed += ratelimit.purge(now)
    return f"removed {removed}"


def purge_token_reveals(now: datetime) -> str:
    """Forget new API tokens nobody came back to see within REVEAL_MINUTES."""
    return f"removed {services.purge_token_reveals(now)}"
