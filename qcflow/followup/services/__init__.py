"""Follow-up services, one module per concern; callers import them from here.

protocols (versions, moving plans onto a new one) · enrolment (by hand and from clinical facts) ·
plans (pause, resume, end) · generator (tasks due, urgent-call warnings) · tasks (a nurse's steps on
a call) · outcomes (completing a call, unreachable) · prompts (findings → adverse-event report) ·
steps (a call's steps by name, for pages and the API).
Inside the package the imports run one way: tasks ← protocols ← generator ← plans ← enrolment ←
outcomes ← steps, prompts ← outcomes.

Services flush and never commit; callers pass `now` (and `actor` where a person acts).
"""
from qcflow.followup.services.enrolment import (
    KEY_CANCERS,
    enrol,
    enrol_by_hand,
    find_plan,
    on_cancer_diagnosis,
    on_death,
    on_encounter_discharged,
    on_operation_performed,
)
from qcflow.followup.services.generator import (
    TASK_COPY,
    Generated,
    due_plans,
    generate_due,
    warn_urgent_deadlines,
)
from qcflow.followup.services.outcomes import complete_task, mark_unreachable
from qcflow.followup.services.plans import (
    CANCELLED_BY,
    PLAN_STEPS,
    cancel_open_tasks,
    check_lost,
    end_plan,
    pause_plan,
    reanchor,
    resume_plan,
    withdraw_plan,
)
from qcflow.followup.services.prompts import (
    SYSTEM,
    dismiss_prompt,
    file_prompt,
    findings,
    findings_text,
    open_firings,
    open_prompt,
    report_data,
    reports_about,
)
from qcflow.followup.services.protocols import (
    check_protocol,
    create_protocol_version,
    current_protocol,
    lookahead,
    move_plans,
    slots_of,
    system_actor,
    untouched,
)
from qcflow.followup.services.steps import TASK_STEPS, take_task_step
from qcflow.followup.services.tasks import (
    allowed_range,
    cancel_task,
    claim_task,
    log_attempt,
    reassign_task,
    release_task,
    reschedule_task,
)

__all__ = [
    "CANCELLED_BY", "KEY_CANCERS", "PLAN_STEPS", "SYSTEM", "TASK_COPY", "TASK_STEPS", "Generated", "allowed_range",
    "cancel_open_tasks", "cancel_task", "check_lost", "check_protocol", "claim_task", "complete_task",
    "create_protocol_version", "current_protocol", "dismiss_prompt", "due_plans", "end_plan", "enrol",
    "enrol_by_hand", "file_prompt", "find_plan", "findings", "findings_text", "generate_due", "log_attempt",
    "lookahead", "mark_unreachable", "move_plans", "on_cancer_diagnosis", "on_death", "on_encounter_discharged",
    "on_operation_performed", "open_firings", "open_prompt", "pause_plan", "reanchor", "reassign_task", "release_task",
    "report_data", "reports_about", "reschedule_task", "resume_plan", "slots_of", "system_actor", "take_task_step", "untouched",
    "warn_urgent_deadlines", "withdraw_plan",
]
