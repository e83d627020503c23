"""`flask --app wsgi qcflow region …`: this installation's signing key, and queueing and sending by hand."""
from __future__ import annotations

import os
import sys

import click
from flask.cli import AppGroup

from qcflow.core.actors import Actor
from qcflow.core.time import now
from qcflow.extensions import db
from qcflow.region import keys, outbox, protocol
from qcflow.region.installation import is_centre
from qcflow.region.registry import hospitals_cli

region_cli = AppGroup("region", help="Regional mode: this installation's signing key; sending to the centre; at a "
                                     "centre, its hospitals.")
region_cli.add_command(hospitals_cli)


def _hand_over_line() -> str:
    if is_centre():
        return "Hand this public key to the hospitals: they set it as REGION_CENTRE_KEY."
    return "Hand this public key to the quality-control centre: it registers this hospital with it."


@region_cli.command("keygen")
def keygen():
    """Create this installation's Ed25519 key (never overwrites one) and print its public key last."""
    path = keys.key_path()
    if os.path.exists(path):
        click.echo(f"Error: a key exists already at {path}; it is kept (the centre or the hospitals hold its public "
                   "key). `region public-key` prints it.", err=True)
        sys.exit(1)
    key = protocol.generate_key()
    try:
        protocol.write_private_key(path, key)
    except FileExistsError:
        click.echo(f"Error: a key exists already at {path}; it is kept.", err=True)
        sys.exit(1)
    click.echo(f"Private key written to {path} (readable by this user only; it never leaves this server).")
    click.echo(_hand_over_line())
    text = protocol.public_key_text(key)
    click.echo(f"Its fingerprint, to compare with the one the other side shows: {protocol.fingerprint(text)}")
    click.echo(text)


@region_cli.command("public-key")
def public_key():
    """Print this installation's public key's fingerprint, then the key (base64) last."""
    try:
        key = keys.own_key()
    except RuntimeError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)
    click.echo(f"fingerprint {protocol.fingerprint(protocol.public_key_text(key))}")
    click.echo(protocol.public_key_text(key))


def _hospital_only() -> None:
    if is_centre():
        click.echo("Error: this installation is a centre (INSTALLATION_ROLE = centre): it sends nothing.", err=True)
        sys.exit(1)


@region_cli.command("queue")
def queue():
    """Queue the months whose deadline has passed (a new version when their values changed) and new forms."""
    _hospital_only()
    if not outbox.can_queue():
        click.echo("Error: set REGION_CENTRE_URL and HOSPITAL_CODE first; nothing queued.", err=True)
        sys.exit(1)
    rows = outbox.queue_due(actor=Actor.system("cli"), now=now())
    db.session.commit()
    for row in rows:
        click.echo(f"queued {row.kind} {row.period} version {row.revision}")
    click.echo(f"{len(rows)} queued" if rows else "nothing new to queue")


@region_cli.command("send")
def send():
    """Send the queued and waiting submissions whose time has come."""
    _hospital_only()
    problem = outbox.sending_problem()
    if problem:
        click.echo(f"Error: {problem}; nothing sent.", err=True)
        sys.exit(1)
    counts = outbox.send_due(now=now(), actor=Actor.system("cli"))
    click.echo(f"accepted {counts['accept']}, rejected {counts['reject']}, waiting {counts['wait']}")
