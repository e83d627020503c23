"""Pages of regional mode (hospital side): what was sent to the centre and its answers, and where the hospital
stands among its peers."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup, escape
from marshmallow import ValidationError

from qcflow.auth.permissions import allowed, current_actor
from qcflow.core.errors import Unprocessable, translate_errors
from qcflow.core.forms import load_args
from qcflow.core.i18n import current_language, label
from qcflow.core.periods import add_months, parse_month
from qcflow.core.time import now, today
from qcflow.indicators import catalogue, queries
from qcflow.region import charts, outbox, protocol
from qcflow.region.models import OUTBOX_STATES
from qcflow.region.schemas import OutboxActionIn, OutboxListArgs, StandingArgs
from qcflow.region.workflow import OUTBOX_WORKFLOW, OutboxState

bp = Blueprint("region", __name__, url_prefix="/region")

#: The command each missing setting is fixed with (shown beside its name).
FIXES = {"REGION_KEY_FILE": "flask --app wsgi qcflow region keygen"}


def _version() -> int | None:
    try:
        return OutboxActionIn().load({"version": request.form.get("version", "")})["version"]
    except ValidationError as error:
        raise Unprocessable(_("Reload the page and try again."), errors=translate_errors(error.messages)) from None


@bp.get("/submissions")
@allowed("region_submissions")
def submissions():
    """What this hospital sent to the centre, newest first, with each one's state and the centre's answer."""
    args, errors = load_args(OutboxListArgs())
    limit = args.get("limit", 50)
    rows = outbox.rows(state=args.get("state"), kind=args.get("kind"), period=args.get("period"),
                       before_id=args.get("cursor"), limit=limit + 1)
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    filters = {k: args[k] for k in ("state", "kind", "period") if args.get(k)}
    at = now()
    due = outbox.due_months(at)
    return render_template("region/submissions.html", rows=rows[:limit], next_cursor=next_cursor, filters=filters,
                           states=OUTBOX_STATES, missing=outbox.missing_settings(), fixes=FIXES, errors=errors,
                           error_parts=outbox.error_parts, last_due=due[-1] if due else None), 422 if errors else 200


@bp.get("/submissions/<int:row_id>")
@allowed("region_submissions")
def submission(row_id):
    """One submission: the values sent (by indicator name), the centre's receipt or its reasons, and the steps."""
    row = outbox.get_row(row_id)
    language = current_language()
    lines = outbox.value_lines(row, language) if row.kind == "month" else []
    actions = {t.action for t in OUTBOX_WORKFLOW.available(row, current_actor())}
    return render_template("region/submission.html", row=row, lines=lines, others=outbox.other_reasons(row),
                           may_send="send" in actions and not OUTBOX_WORKFLOW.in_phase(row, "answered"),
                           may_requeue="requeue" in actions, error=outbox.error_parts(row.last_error),
                           month=parse_month(row.period) if row.kind == "month" else None,
                           receipt=row.answer if row.state == OutboxState.ACCEPTED.value else None,
                           refusal=row.answer if row.state == OutboxState.REJECTED.value else None,
                           missing=outbox.missing_settings(), fixes=FIXES)


@bp.post("/submissions/<int:row_id>/send")
@allowed("region_submissions")
def send_submission(row_id):
    """Send this submission now (it is marked and committed first, then sent)."""
    row = outbox.get_row(row_id)
    outcome = outbox.send_now(row, actor=current_actor(), now=now(), expected_version=_version())
    flash({"accept": _("The centre accepted the submission."), "reject": _("The centre rejected the submission: "
           "see its reasons below."), "wait": _("The centre did not answer; the submission will be sent again.")}
          [outcome])
    return redirect(url_for("region.submission", row_id=row.id))


@bp.post("/submissions/<int:row_id>/requeue")
@allowed("region_submissions")
def requeue_submission(row_id):
    """Send a rejected version again (after its cause was fixed at the centre)."""
    row = outbox.get_row(row_id)
    outbox.requeue(row, actor=current_actor(), now=now(), expected_version=_version())
    flash(_("Queued again: the sending job sends it within a minute."))
    return redirect(url_for("region.submission", row_id=row.id))


@bp.post("/months/check")
@allowed("region_submissions")
def check_month():
    """Compare a month's values with its latest version sent and queue a new version when they changed."""
    month = parse_month(request.form.get("month", "").strip())
    if month is None:
        raise Unprocessable(_("Enter a month as YYYY-MM."), errors={"month": [_("Enter a month as YYYY-MM.")]})
    row = outbox.check_month(month, actor=current_actor(), now=now())
    if row is None:
        flash(_("The values of %(month)s did not change since the version sent: nothing new to send.",
                month=f"{month:%Y-%m}"))
        latest = outbox.latest("month", f"{month:%Y-%m}")
        return redirect(url_for("region.submission", row_id=latest.id) if latest else url_for("region.submissions"))
    flash(_("Version %(n)d of %(month)s is queued.", n=row.revision, month=f"{month:%Y-%m}"))
    return redirect(url_for("region.submission", row_id=row.id))


# Standing ------------------------------------------------------------------------------------------------------

def _plan_entries():
    return [e for e in catalogue.entries(include_local=False) if e.method != "not_applicable"]


@bp.get("/standing")
@allowed("region_submissions")
def standing():
    """Where this hospital stands among the hospitals of its level for one indicator (the centre's answer)."""
    at = now()
    args, errors = load_args(StandingArgs())
    entries = _plan_entries()
    by_code = {e.code: e for e in entries}
    code = args.get("indicator")
    if code is not None and code not in by_code:
        errors["indicator"] = [_("Choose an indicator of the catalogue.")]
    try:
        first, last = protocol.check_quarter(args.get("from_"), args.get("to"), today(at))
    except Unprocessable as error:
        first, last = None, None
        for field_name, messages in error.errors.items():
            errors.setdefault(field_name, []).extend(messages)
    data = problem = None
    if code and not errors:
        try:
            data = outbox.standing(code, first, last, now=at)
        except outbox.StandingUnavailable as error:
            problem = error
    entry = by_code.get(code) if code else None
    return render_template(
        "region/standing.html", entries=sorted(entries, key=lambda e: e.label(current_language())), code=code,
        entry=entry, first=first, last=last, errors=errors, data=data, problem=problem,
        quarters=_quarters(at),
        chart=funnel_svg(data, entry.unit if entry else "") if data and not data.get("too_few_hospitals") else None,
        met=_met(data),
        missing=outbox.missing_settings(), fixes=FIXES), 422 if errors else 200


def _quarters(at, years: int = 5) -> list[tuple[date, str]]:
    """The quarters the standing form offers (first month, name): those of the last `years` years that have
    ended, newest first (the centre answers one ended quarter at a time)."""
    latest = protocol.last_quarter(today(at))
    found = [add_months(latest, -3 * i) for i in range(4 * years)]
    return [(first, protocol.quarter_name(first)) for first in found]


def _met(data: dict | None) -> bool | None:
    """Whether this hospital's value meets the target the centre gave (None: no target or no value shown)."""
    if not data or not data.get("target"):
        return None
    target, value = data["target"], (data.get("own") or {}).get("value")
    if target.get("comparison") not in queries.COMPARE or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, target.get("value"))):
        return None
    return queries.is_met((data.get("own") or {}).get("value"), target.get("value"), target.get("comparison"))


def funnel_svg(data: dict, unit: str) -> Markup:
    """The centre's standing answer as a funnel plot in the frame of the centre's charts: the peers as grey unnamed
    dots, this hospital's dot highlighted, the regional value and the 95 % and 99.8 % limits when the indicator is a
    rate (otherwise the hospitals side by side)."""
    box = width, height, left, right, top, bottom = 640, 300, 58, 16, 16, 40
    own = data.get("own") or {}
    peers = [p for p in data.get("peers") or [] if not p.get("suppressed") and p.get("value") is not None]
    limits = sorted(data.get("limits") or [], key=lambda lim: lim["denominator"])
    regional = (data.get("regional") or {}).get("value")
    has_parts = any(p.get("denominator") for p in peers) or own.get("denominator")
    points = [(p.get("denominator") if has_parts else i + 1, p["value"]) for i, p in enumerate(peers)]
    own_point = None
    if own.get("value") is not None:
        own_point = (own.get("denominator") if has_parts else len(peers) + 1, own["value"])
    xs = [x or 0 for x in [x for x, _y in points] + ([own_point[0]] if own_point else [])
          + [lim["denominator"] for lim in limits]]
    ys = [y for _x, y in points] + ([own_point[1]] if own_point else []) + [
        v for lim in limits for v in (lim.get("lower998"), lim.get("upper998")) if v is not None] + (
        [regional] if regional is not None else [])
    # Padded so that the rightmost dot is drawn whole.
    x_max = (max(xs or [1]) or 1) * 1.06
    y_min, y_max = min(ys or [0]), max(ys or [1])
    if y_max == y_min:
        y_min, y_max = y_min - 1, y_max + 1
    pad = (y_max - y_min) * 0.05
    y_min, y_max = max(y_min - pad, 0) if y_min >= 0 else y_min - pad, y_max + pad

    def px(x):
        return left + (width - left - right) * (x or 0) / x_max

    def py(y):
        return top + (height - top - bottom) * (1 - (y - y_min) / (y_max - y_min))

    parts = charts.chart_frame(box, _("Funnel plot: this hospital among the hospitals of its level"), "funnel",
                              y_min, y_max, py, unit)
    x_label = _("Cases (denominator)") if has_parts else _("Hospitals")
    parts.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 8}" text-anchor="middle" '
                 f'fill="#444">{escape(x_label)}</text>')
    for name, colour, dash in (("lower95", "#2a7a2a", "5 3"), ("upper95", "#2a7a2a", "5 3"),
                               ("lower998", "#b3261e", "2 2"), ("upper998", "#b3261e", "2 2")):
        parts.append(charts.polyline([(px(lim["denominator"]), py(lim[name])) for lim in limits
                                           if lim.get(name) is not None], colour, dash))
    if regional is not None:
        parts.append(charts.polyline([(left, py(regional)), (width - right, py(regional))], "#1a73e8"))
    for x, y in points:
        parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="4" fill="#9aa0a6"/>')
    if own_point:
        parts.append(f'<circle cx="{px(own_point[0]):.1f}" cy="{py(own_point[1]):.1f}" r="6" fill="#d93025" '
                     f'stroke="#fff" stroke-width="1.5" class="own"><title>{escape(_("This hospital"))}</title>'
                     f'</circle>')
    parts.append("</svg>")
    return Markup("".join(parts))


@bp.app_template_global("region_error_label")
def region_error_label(code):
    return label("region_send_error", code) if code else ""
