"""`flask --app wsgi qcflow …`: administration from the command line.

Commands are entrypoints: they validate, call one service, commit once.
Bad input exits with code 2 and a message saying what to fix.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from qcflow.core.actors import Actor
from qcflow.core.errors import DomainError
from qcflow.core.time import now, parse_instant
from qcflow.extensions import db

qcflow_cli = AppGroup("qcflow", help="qcflow administration.")
CLI_ACTOR = Actor.system("cli")


def fail(message: str) -> None:
    """Print an actionable message and exit with code 2."""
    db.session.rollback()
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def run_service(fn, *args, **kwargs):
    """Call a service; a domain error becomes a clear message and exit code 2."""
    try:
        return fn(*args, **kwargs)
    except DomainError as error:
        details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in (error.errors or {}).items())
        fail(f"{error.message}" + (f" ({details})" if details else ""))


users_cli = AppGroup("users", help="User accounts.")


@users_cli.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--role", "roles", multiple=True, required=True,
              help="clinician, nurse, dept_head, quality or admin; repeat for several.")
@click.option("--department", required=True, help="Department code, e.g. QC.")
@click.option("--display-name")
def users_create(username, password, roles, department, display_name):
    """Create a user."""
    from qcflow.auth import services

    dept = run_service(services.find_department, department)
    user = run_service(services.create_user, username, password, list(roles), dept,
                       actor=CLI_ACTOR, now=now(), display_name=display_name)
    db.session.commit()
    click.echo(f"created user {user.username} ({', '.join(sorted(user.role_names))}) in {dept.code}")


@users_cli.command("disable")
@click.option("--username", required=True)
def users_disable(username):
    """Disable a user and end all of their sessions."""
    from qcflow.auth import services

    user = run_service(services.find_user, username)
    services.disable_user(user, actor=CLI_ACTOR, now=now())
    db.session.commit()
    click.echo(f"disabled {user.username}; all sessions ended")


@users_cli.command("reset-2fa")
@click.option("--username", required=True)
def users_reset_2fa(username):
    """Clear a user's second factor (lost phone); they set it up again at the next login. Ends their sessions."""
    from qcflow.auth import services

    user = run_service(services.find_user, username)
    ended = services.reset_second_factor(user, actor=CLI_ACTOR, now=now())
    db.session.commit()
    click.echo(f"second factor of {user.username} cleared; {ended} session(s) ended; "
               "a new one is set up at the next login")


tokens_cli = AppGroup("tokens", help="API bearer tokens.")


@tokens_cli.command("create")
@click.option("--username", required=True)
@click.option("--name", default="cli", help="What the token is for, e.g. his-interface.")
@click.option("--days", type=int, default=None,
              help="Days until the token expires (default: API_TOKEN_DAYS, 90 unless configured).")
def tokens_create(username, name, days):
    """Create an API token; the token is printed once, alone on the last line."""
    from qcflow.auth import services

    user = run_service(services.find_user, username)
    days = current_app.config["API_TOKEN_DAYS"] if days is None else days
    row, token = run_service(services.create_token, user, name, days=days, actor=CLI_ACTOR, now=now())
    db.session.commit()
    click.echo(f"token {row.id} ({row.prefix}…) for {user.username}, valid until "
               f"{row.expires_at:%Y-%m-%d %H:%M} UTC (shown once; store it safely):")
    click.echo(token)


@tokens_cli.command("list")
@click.option("--username", help="Only this user's tokens.")
def tokens_list(username):
    """List API tokens: id, status, user, name, prefix, created, expires, last used (UTC)."""
    from qcflow.auth import services

    tokens = run_service(services.list_tokens, username)
    at = now()
    stamp = lambda value: f"{value:%Y-%m-%d %H:%M}" if value else "-"  # noqa: E731
    click.echo(f"{'id':>5}  {'status':<8} {'user':<16} {'name':<24} {'prefix':<13} {'created':<16}  "
               f"{'expires':<16}  {'last used':<16}")
    for token in tokens:
        click.echo(f"{token.id:>5}  {token.status(at):<8} {token.user.username:<16} {token.name[:24]:<24} "
                   f"{token.prefix:<13} {stamp(token.created_at):<16}  {stamp(token.expires_at):<16}  "
                   f"{stamp(token.last_used_at):<16}")
    if not tokens:
        click.echo("no tokens")


@tokens_cli.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id):
    """Revoke an API token (see `tokens list` for the id); it is refused from the next request on."""
    from qcflow.auth import services

    token = run_service(services.get_token, token_id)
    run_service(services.revoke_token, token, actor=CLI_ACTOR, now=now())
    db.session.commit()
    click.echo(f"token {token.id} ({token.prefix}…) of {token.user.username} revoked")


departments_cli = AppGroup("departments", help="Departments.")


@departments_cli.command("create")
@click.option("--code", required=True)
@click.option("--name", required=True, help="Chinese name, e.g. 普通外科.")
@click.option("--name-en")
@click.option("--kind", required=True, type=click.Choice(["clinical", "nursing", "functional"]))
def departments_create(code, name, name_en, kind):
    """Create a department."""
    from qcflow.auth import services

    dept = run_service(services.create_department, code, name, kind, actor=CLI_ACTOR, now=now(), name_en=name_en)
    db.session.commit()
    click.echo(f"created department {dept.code} {dept.name} ({dept.kind})")


@qcflow_cli.command("demo-data")
def demo_data():
    """Load demo departments and users (first run only) and print the demo logins. On a regional centre
    (INSTALLATION_ROLE=centre): the centre's staff and three hospitals sending a year of signed months."""
    if current_app.config["INSTALLATION_ROLE"] == "centre":
        from qcflow.region.demo import CENTRE_USERS as users, load_centre_demo

        if load_centre_demo(now=now()):
            click.echo("demo data loaded: the centre's staff, three hospitals with their keys and a year of their "
                       "signed monthly indicators (one month still missing, one corrected)")
        else:
            click.echo("demo data already present")
    else:
        from qcflow.demo import DEMO_USERS as users, load_demo_data

        receipt = load_demo_data(now=now())
        db.session.commit()
        if receipt:
            click.echo("demo data loaded: departments, users, staff and a year of reports, operations, discussions "
                       "and follow-up calls")
            click.echo(f"receipt code of the demo anonymous report (try it on /receipt): {receipt}")
        else:
            click.echo("demo data already present")
        from qcflow.demo import UNANSWERED_DEMO_PATIENT, demo_patient_link

        link = demo_patient_link()
        if link:
            _his_id, name, born = UNANSWERED_DEMO_PATIENT
            click.echo(f"follow-up link sent to the demo patient {name}, who has not answered yet (open it on this "
                       f"server to answer as the patient; year of birth {born}): {link}")
    click.echo("demo logins (user / password / roles):")
    for username, password, roles, dept, _name in users:
        click.echo(f"  {username:<10} {password:<18} {', '.join(roles)} @ {dept}")
    mfa = [username for username, _pw, roles, _dept, _name in users
           if set(roles) & set(current_app.config["MFA_REQUIRED_ROLES"])]
    click.echo(f"second factor: {', '.join(mfa)} set up an authenticator app (TOTP) at their first login")


@qcflow_cli.command("import")
@click.argument("kind")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--strict", is_flag=True, help="All or nothing: one bad row and nothing is imported.")
def import_csv(kind, path, strict):
    """Import a CSV file (header row = field names): patients, encounters, operations, diagnoses,
    census, procedures, staff or authorisations. Exit 1 if any row was refused."""
    from qcflow.clinical import services
    from qcflow.clinical.intake_csv import example_row, read_csv

    if kind not in services.KINDS:
        fail(f"unknown kind {kind!r}; use one of: {', '.join(services.KINDS)}")
    with open(path, "rb") as handle:
        rows = run_service(read_csv, handle.read())
    results = run_service(services.import_rows, kind, rows, actor=CLI_ACTOR, now=now(), strict=strict, first_row=2,
                          example=example_row(services.KINDS[kind].schema))
    db.session.commit()
    summary = services.summarise(results)
    for result in results:
        if result.errors:
            problems = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in result.errors.items())
            click.echo(f"line {result.row}: {problems}", err=True)
        for warning in result.warnings:
            click.echo(f"line {result.row}: warning: {warning}", err=True)
    outcome = "nothing imported (--strict)" if strict and summary["failed"] else "imported"
    click.echo(f"{kind}: {outcome}; created {summary['created']}, updated {summary['updated']}, "
               f"unchanged {summary['unchanged']}, refused {summary['failed']}")
    sys.exit(1 if summary["failed"] else 0)


@qcflow_cli.command("backup")
@click.argument("dest", type=click.Path(dir_okay=False, writable=True))
def backup(dest):
    """Copy the SQLite database online to DEST (PostgreSQL: use pg_dump)."""
    engine = db.engine
    if engine.dialect.name != "sqlite":
        fail("this database is PostgreSQL; back it up with: pg_dump -Fc -f qcflow.dump \"$DATABASE_URL\" "
             "(see docs/deploy.md)")
    source = sqlite3.connect(engine.url.database)
    target = sqlite3.connect(dest)
    try:
        with target:
            source.backup(target)
    finally:
        target.close()
        source.close()
    click.echo(f"backup written to {dest}")
    click.echo("attached files are not in it: back up ATTACHMENT_DIR (default instance/attachments) as well")


audit_cli = AppGroup("audit", help="The audit trail.")


@audit_cli.command("verify")
@click.option("--anchor", "anchor_file", type=click.Path(dir_okay=False),
              help="Anchor file to check the chains against (default: AUDIT_ANCHOR_FILE).")
def audit_verify(anchor_file):
    """Walk the hash chains and check them against the anchors; exit 1 at the first broken link.

    When the chains are intact, their heads are appended to the anchor file.
    Exit 2 when the anchor file cannot be read.
    """
    from qcflow.core import audit

    explicit, anchor_file = bool(anchor_file), anchor_file or current_app.config.get("AUDIT_ANCHOR_FILE")
    anchors = []
    # The configured file may not exist before the first anchor; a file named on the command line must.
    if anchor_file and (explicit or os.path.exists(anchor_file)):
        try:
            anchors = audit.read_anchors(anchor_file)
        except audit.AnchorFileError as error:
            click.echo(f"audit anchors unusable: {error}", err=True)
            sys.exit(2)
    result = audit.verify(anchors=anchors)
    if not result.ok:
        click.echo(f"audit chain BROKEN ({result.chain} chain) at seq {result.broken_seq}: {result.reason} "
                   f"({result.checked} entries before it are intact)", err=True)
        sys.exit(1)
    click.echo(f"audit chain intact: {result.counts['main']} entries, {result.counts['anonymous']} in the anonymous "
               f"chain, {result.anchors_checked} anchors matched")
    if anchor_file:
        _append_anchor(anchor_file, now())


@audit_cli.command("anchor")
@click.option("--file", "anchor_file", type=click.Path(dir_okay=False),
              help="File to append the heads to (default: AUDIT_ANCHOR_FILE).")
def audit_anchor(anchor_file):
    """Append the chains' heads (seq, hash, time) to the anchor file, outside the database."""
    anchor_file = anchor_file or current_app.config.get("AUDIT_ANCHOR_FILE")
    if not anchor_file:
        click.echo("no anchor file: pass --file or set QCFLOW_AUDIT_ANCHOR_FILE", err=True)
        sys.exit(2)
    _append_anchor(anchor_file, now())


def _append_anchor(path: str, at) -> None:
    from qcflow.core import audit

    try:
        anchors = audit.write_anchor(path, at)
    except OSError as error:
        click.echo(f"cannot write the anchor file {path}: {error.strerror}", err=True)
        sys.exit(2)
    for anchor in anchors:
        click.echo(f"anchored {anchor.chain} chain at seq {anchor.seq} in {path}")


workflow_cli = AppGroup("workflow", help="Workflow tables.")


@workflow_cli.command("diagram")
@click.argument("name")
def workflow_diagram(name):
    """Print the Mermaid diagram of workflow NAME."""
    from qcflow.core.workflow import WORKFLOWS, import_all_workflows

    import_all_workflows()
    workflow = WORKFLOWS.get(name)
    if workflow is None:
        fail(f"no workflow named {name!r}; known: {', '.join(sorted(WORKFLOWS)) or 'none'}")
    click.echo(workflow.mermaid())


scheduler_cli = AppGroup("scheduler", help="The scheduler process.")


@scheduler_cli.command("run")
def scheduler_run():
    """Run the scheduler in this process until stopped (only one process is the leader)."""
    from qcflow.scheduling.runner import run_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_forever(current_app._get_current_object())


@scheduler_cli.command("tick")
@click.option("--now", "at", help="ISO 8601 instant to run for (default: now; no offset = hospital time).")
@click.option("--job", "job_id", help="Run only this job.")
def scheduler_tick(at, job_id):
    """Run the jobs once (cron fallback, tests)."""
    from qcflow.scheduling.jobs import JOBS, find_job, jobs_of
    from qcflow.scheduling.runner import run_job

    try:
        when = parse_instant(at) if at else now()
    except ValueError:
        fail(f"--now {at!r} is not an ISO 8601 date-time, e.g. 2026-01-31T08:00:00+08:00")
    specs = jobs_of(current_app.config["INSTALLATION_ROLE"])
    if job_id:
        spec = find_job(job_id)
        if spec is None:
            fail(f"no job {job_id!r}; known: {', '.join(s.id for s in JOBS)}")
        specs = [spec]
    failed = 0
    for spec in specs:
        run = run_job(spec, when)
        failed += run.status != "ok"
        click.echo(f"{spec.id}: {run.status} {run.result}")
    sys.exit(1 if failed else 0)


indicators_cli = AppGroup("indicators", help="Quality indicators: monthly snapshots and targets.")


@indicators_cli.command("freeze")
@click.option("--month", required=True, help="The finished month to freeze, as YYYY-MM.")
def indicators_freeze(month):
    """Freeze a finished month's indicator values (rows already frozen are kept)."""
    from qcflow.core.periods import parse_month
    from qcflow.indicators import services

    first = parse_month(month)
    if first is None:
        fail(f"--month {month!r} is not a month as YYYY-MM, e.g. 2026-01")
    added = run_service(services.freeze_month, first, actor=CLI_ACTOR, now=now())
    db.session.commit()
    click.echo(f"{month}: snapshot rows added {added}")


@indicators_cli.command("set-target")
@click.option("--code", required=True, help="Indicator code, e.g. ae_per_100_discharges.")
@click.option("--level", required=True, help="tertiary or secondary.")
@click.option("--year", required=True, type=int, help="First year the target applies to.")
@click.option("--comparison", required=True, help="gt, ge, le or lt (value compared with the target).")
@click.option("--value", required=True, type=float)
@click.option("--source", help="Where the target comes from.")
def indicators_set_target(code, level, year, comparison, value, source):
    """Set an indicator's target for a hospital level from a year on."""
    from qcflow.indicators import services

    # The operator replaces whatever is there (audited with the value before).
    run_service(services.set_target, code, level, year, comparison, value, actor=CLI_ACTOR, now=now(), source=source,
                expected_version=services.target_version(code, level, year))
    db.session.commit()
    click.echo(f"target {code} {level} {year}: {comparison} {value}")


def register_cli(app: Flask) -> None:
    for group in (users_cli, tokens_cli, departments_cli, audit_cli, workflow_cli, scheduler_cli, indicators_cli):
        qcflow_cli.add_command(group)
    qcflow_cli.add_command(__import__("qcflow.region.cli", fromlist=["region_cli"]).region_cli)
    app.cli.add_command(qcflow_cli)
