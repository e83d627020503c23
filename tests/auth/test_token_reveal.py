"""A new API token waits in plain text only until its page shows it, and never longer than REVEAL_MINUTES:
forgotten by the scheduler when nobody comes back for it, and whenever another token is created."""
from datetime import timedelta

import sqlalchemy as sa

from qcflow.auth import services
from qcflow.core.actors import Actor


def stored_secrets():
    from qcflow.auth.models import TokenReveal
    from qcflow.extensions import db

    db.session.expire_all()
    return set(db.session.scalars(sa.select(TokenReveal.secret)))


def new_token(user, name, now, session_key="session-a"):
    row, token = services.create_token(user, name, days=30, actor=Actor.system("test"), now=now)
    services.stash_new_token(row, token, session_key=session_key, now=now)
    return token


def test_a_token_nobody_came_back_for_is_forgotten_by_the_scheduler_after_five_minutes(app, runner, create_user, now):
    from qcflow.extensions import db

    user = create_user()
    old = new_token(user, "his-interface", now)
    recent = new_token(user, "lis-interface", now + timedelta(minutes=3))
    db.session.commit()
    tick = ["qcflow", "scheduler", "tick", "--job", "housekeeping.purge_token_reveals", "--now"]

    result = runner.invoke(args=[*tick, (now + timedelta(minutes=4)).isoformat()])
    assert result.exit_code == 0, result.output
    assert stored_secrets() == {old, recent}  # both may still be shown

    result = runner.invoke(args=[*tick, (now + timedelta(minutes=6)).isoformat()])
    assert result.exit_code == 0, result.output
    assert "housekeeping.purge_token_reveals: ok removed 1" in result.output
    assert stored_secrets() == {recent}

    runner.invoke(args=[*tick, (now + timedelta(minutes=9)).isoformat()])
    assert stored_secrets() == set()
    # The tokens themselves stay valid: only their plain copy is gone.
    assert len(services.list_tokens(user.username)) == 2


def test_creating_a_token_forgets_every_other_left_unshown_too_long(app, create_user, now):
    from qcflow.extensions import db

    user = create_user()
    forgotten = new_token(user, "his-interface", now, session_key="session-a")
    db.session.commit()
    fresh = new_token(user, "lis-interface", now + timedelta(minutes=6), session_key="session-b")
    db.session.commit()
    assert stored_secrets() == {fresh}
    assert forgotten not in stored_secrets()
