"""The JOBS table: every scheduled job, as data. Domains append their rows here.

Each function is `module:function`, called as function(now=...) inside an app
context; it calls one idempotent service and returns a short result. The runner
commits and logs a `job_run` row.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class JobSpec:
    id: str
    function: str
    trigger: str  # "interval" or "cron" (APScheduler 3.x trigger names)
    trigger_args: dict = field(default_factory=dict)
    #: Run once as soon as the scheduler starts (catch up after downtime); jobs are idempotent.
    run_at_start: bool = True
    #: The installations that run it (INSTALLATION_ROLE): a centre has no patients, cases or calls.
    installations: tuple[str, ...] = ("hospital",)


BOTH = ("hospital", "centre")

JOBS: list[JobSpec] = [
    JobSpec("housekeeping.purge_sessions", "qcflow.auth.jobs:purge_expired_sessions", "interval", {"minutes": 30},
            installations=BOTH),
    # A new token waits at most REVEAL_MINUTES (5) in plain text to be shown; this bounds how long it
    # may stay when nobody opens the tokens page again.
    JobSpec("housekeeping.purge_token_reveals", "qcflow.auth.jobs:purge_token_reveals", "interval", {"minutes": 1},
            installations=BOTH),
    JobSpec("housekeeping.purge_idempotency_keys", "qcflow.events.jobs:purge_idempotency_keys", "interval",
            {"minutes": 30}, installations=BOTH),
    JobSpec("files.sweep_orphans", "qcflow.files.jobs:sweep_orphans", "cron", {"hour": 4, "minute": 10}),
    JobSpec("events.escalate_deadlines", "qcflow.events.jobs:escalate_deadlines", "interval", {"minutes": 5}),
    JobSpec("followup.generate_tasks", "qcflow.followup.jobs:generate_tasks", "interval", {"minutes": 5}),
    JobSpec("followup.warn_urgent_deadlines", "qcflow.followup.jobs:warn_urgent_deadlines", "interval",
            {"minutes": 10}),
    # Does nothing while INVITATION_SENDERS or INVITATION_LINK_BASE is unset (docs/deploy.md §13).
    JobSpec("followup.send_invitations", "qcflow.followup.invitations.jobs:send_invitations", "interval",
            {"minutes": 1}),
    JobSpec("extraction.evaluate_triggers", "qcflow.extraction.jobs:evaluate_triggers", "interval", {"minutes": 5}),
    JobSpec("mdt.remind_preop", "qcflow.mdt.jobs:remind_preop", "interval", {"minutes": 30}),
    JobSpec("mdt.escalate_overdue", "qcflow.mdt.jobs:escalate_overdue", "interval", {"minutes": 15}),
    JobSpec("indicators.refresh_rollups", "qcflow.indicators.jobs:refresh_rollups", "cron", {"hour": 0, "minute": 45}),
    JobSpec("indicators.freeze_snapshots", "qcflow.indicators.jobs:freeze_snapshots", "cron", {"hour": 1, "minute": 15}),
    JobSpec("indicators.remind_reports", "qcflow.indicators.jobs:remind_reports", "cron", {"hour": 8, "minute": 30}),
    JobSpec("audit.anchor", "qcflow.core.audit:anchor_job", "interval", {"minutes": 15}, installations=BOTH),
    JobSpec("events.announce_anonymous_reports", "qcflow.events.jobs:announce_anonymous_reports", "cron",
            {"minute": "1,16,31,46"}),
    JobSpec("reports.monthly_bulletin", "qcflow.reports.jobs:monthly_bulletin", "cron", {"day": 1, "hour": 2, "minute": 0}),
    # Daily; it acts only on INDICATOR_FORM_REMINDER_DATES up to INDICATOR_FORM_DUE, once per date.
    JobSpec("indicators.remind_annual_form", "qcflow.indicators.jobs:remind_annual_form", "cron",
            {"hour": 8, "minute": 30}),
    # Regional mode, hospital side: both do nothing on a centre or while sending is not set up.
    JobSpec("region.queue_submissions", "qcflow.region.jobs:queue_submissions", "cron", {"hour": 3, "minute": 30}),
    JobSpec("region.send_submissions", "qcflow.region.jobs:send_submissions", "interval", {"minutes": 1}),
    # Daily at a centre; from REGION_DUE_DAY on it reminds of last month's missing hospitals, once per month.
    JobSpec("region.remind_missing", "qcflow.region.centre_jobs:remind_missing", "cron", {"hour": 9, "minute": 0},
            installations=("centre",)),
]


def find_job(job_id: str) -> JobSpec | None:
    return next((spec for spec in JOBS if spec.id == job_id), None)


def jobs_of(installation: str) -> list[JobSpec]:
    """The jobs this installation runs (its INSTALLATION_ROLE)."""
    return [spec for spec in JOBS if installation in spec.installations]
