"""Read side of follow-up: the daily queue, counts, a task as each role may see it, prompts, the sheet."""
from __future__ import annotations

import base64
import collections
import functools
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy.orm import lazyload

from qcflow.auth.models import Role, User, UserRole
from qcflow.auth.permissions import department_for, get_scoped_or_404, scoped, scoped_to, sees_all_departments
from qcflow.clinical.models import CancerDiagnosis, Encounter, Operation, Patient
from qcflow.clinical.queries import patients_named
from qcflow.core import audit
from qcflow.core.actors import Actor
from qcflow.core.db import UTCDateTime
from qcflow.core.errors import NotFound, Unprocessable
from qcflow.core.masking import mask_phone
from qcflow.core.pagination import keyset_page
from qcflow.core.periods import local_midnight
from qcflow.core.schemas import DateTime
from qcflow.core.time import hospital_tz, local
from qcflow.extensions import db
from qcflow.extraction.models import Trigger
from qcflow.followup.invitations import queries as invitations
from qcflow.followup.models import Attempt, EventPrompt, Plan, Protocol, Task
from qcflow.followup.timeliness import Timeliness, is_open, of, overdue_clause, timeliness_sql


def load_task(task_id: int, actor: Actor) -> Task:
    """A task of the actor's department (quality: any); another department's task is 404."""
    return get_scoped_or_404(Task, task_id, actor)


def load_plan(plan_id: int, actor: Actor) -> Plan:
    return get_scoped_or_404(Plan, plan_id, actor)


def load_prompt(prompt_id: int, actor: Actor) -> EventPrompt:
    """A possible event the actor reviews; another department's is a 404."""
    return get_scoped_or_404(EventPrompt, prompt_id, actor)


#: The task columns a task is shown with (present(), TaskOut).
SHOWN = ("id", "plan_id", "occurrence", "pathway", "department_id", "state", "version", "due_at", "due_on", "opens_at",
         "closes_at", "is_urgent", "alarm", "is_timed", "assignee_id", "snoozed_until", "attempt_count", "respondent",
         "complication", "unplanned_readmission", "reoperation", "recurrence_metastasis", "vital_status",
         "health_education_given", "revisit_booked", "satisfaction", "is_effective", "closed_at",
         "closed_recorded_at", "channel")

#: A queue page for the API (queue_page): the task columns present() shows and the patient's, read
#: through the connection as named tuples. Loading 50 tasks and patients as ORM objects cost more
#: than the page query itself, reading the columns nobody shows (notes, reasons, claim times) a fifth
#: of the query, and reading a column of SQLAlchemy's Row by name about 1 µs (present() reads 32).
PAGE_TASK = tuple(getattr(Task, name) for name in (*SHOWN, "died_on", "patient_id"))
PAGE_PATIENT = (Patient.id, Patient.mrn, Patient.name, Patient.sex, Patient.phone)
_task_row = collections.namedtuple("TaskRow", [column.key for column in PAGE_TASK])._make
_patient_row = collections.namedtuple("PatientRow", [column.key for column in PAGE_PATIENT])._make

#: The label of "my open tasks" in counts()' one statement (not a timeliness value).
MINE = "mine"


def _end_of(day: date) -> datetime:
    return local_midnight(day + timedelta(days=1), hospital_tz())


#: "now" in the queue's statements (bound per request; the statements are built once).
NOW = sa.bindparam("now", type_=UTCDateTime())


def _queue_where(stmt, own_department: bool, department: bool):
    """Open tasks of the department whose window has opened by the end of the day (overdue ones
    included), not snoozed: `scope` (the actor's own department) and `department` (a chosen one)."""
    if own_department:
        stmt = scoped_to(stmt, Task.department_id, sa.bindparam("scope"))
    if department:
        stmt = stmt.where(Task.department_id == sa.bindparam("department"))
    return stmt.where(is_open(Task), Task.opens_at < sa.bindparam("end_of_day", type_=UTCDateTime()),
                      sa.or_(Task.snoozed_until.is_(None), Task.snoozed_until <= NOW))


def _sort_columns():
    """Most urgent first: alarming answers a patient gave online, day-surgery deadlines, then overdue age (oldest
    first), then due time.
    The queue holds open tasks only, whose timeliness is overdue exactly when `overdue_clause` holds
    (timeliness.py), a cheaper expression to sort every candidate row by than the general rule."""
    overdue = overdue_clause(Task, NOW)
    return (sa.case((Task.alarm, 0), (Task.is_urgent, 1), else_=2), sa.case((overdue, 0), else_=1),
            sa.case((overdue, Task.closes_at), else_=Task.due_at), Task.id)


def encode_cursor(as_of: datetime, key: tuple) -> str:
    urgent, overdue, sort_at, task_id = key
    text = f"{as_of.isoformat()}|{urgent}|{overdue}|{sort_at.isoformat()}|{task_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, tuple]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        as_of, urgent, overdue, sort_at, task_id = text.split("|")
        # The API's own date-time field: a cursor is client input (an offset is required, years are bounded).
        instant = DateTime().deserialize
        return instant(as_of), (int(urgent), int(overdue), instant(sort_at), int(task_id))
    except (ValueError, UnicodeDecodeError, ValidationError):
        raise Unprocessable(errors={"cursor": [_("Not a cursor from this queue; start again without it.")]})


def queue(actor: Actor, *, now: datetime, **filters) -> tuple[list[Task], dict, str | None]:
    """The daily queue (see queue_page) as Task objects, their patients by id and the next cursor."""
    return _queue(False, actor, now=now, **filters)


def queue_page(actor: Actor, *, now: datetime, **filters) -> tuple[list, dict, str | None]:
    """A page of the daily queue for the API: PAGE_TASK rows, their patients by id (PAGE_PATIENT rows,
    read in the same query) and the next cursor. Plain rows: the page is shown, not changed."""
    return _queue(True, actor, now=now, **filters)


@functools.lru_cache(maxsize=128)
def _queue_statement(rows: bool, own_department: bool, department: bool, pathway: bool, assignee: str | None,
                     state: bool, keyset: bool):
    """The queue's statement for one combination of filters, built once (building it took longer than
    PostgreSQL took to run it); every value is a bound parameter.

    The page's tasks are chosen from the queue index alone (it holds every column the filters and the
    order use), then only those tasks and their patients are read: reading every candidate row and
    joining its patient before keeping 50 cost more than everything else in the query."""
    chosen = _queue_where(sa.select(Task.id), own_department, department)
    if pathway:
        chosen = chosen.where(Task.pathway == sa.bindparam("pathway"))
    if assignee == "none":
        chosen = chosen.where(Task.assignee_id.is_(None))
    elif assignee:
        chosen = chosen.where(Task.assignee_id == sa.bindparam("assignee"))
    if state:
        chosen = chosen.where(Task.state == sa.bindparam("state"))
    urgent, overdue, sort_at, task_id = order = _sort_columns()
    if keyset:
        k_urgent, k_overdue, k_sort, k_id = (sa.bindparam("k_urgent"), sa.bindparam("k_overdue"),
                                             sa.bindparam("k_sort", type_=UTCDateTime()), sa.bindparam("k_id"))
        chosen = chosen.where(sa.or_(
            urgent > k_urgent,
            sa.and_(urgent == k_urgent, overdue > k_overdue),
            sa.and_(urgent == k_urgent, overdue == k_overdue, sort_at > k_sort),
            sa.and_(urgent == k_urgent, overdue == k_overdue, sort_at == k_sort, task_id > k_id),
        ))
    page = chosen.order_by(*order).limit(sa.bindparam("limit")).subquery("page")
    # The page shows task columns and the patient: the patient comes in the same query; the plan and
    # its protocol (and phases) are not loaded at all.
    stmt = (sa.select(*PAGE_TASK) if rows else sa.select(Task)).join(page, page.c.id == Task.id)
    stmt = stmt.add_columns(*PAGE_PATIENT).join(Patient, Patient.id == Task.patient_id).order_by(*order)
    return stmt if rows else stmt.options(lazyload(Task.plan))


def _queue(rows: bool, actor: Actor, *, now: datetime, department=None, date=None, pathway=None, assignee=None,
           state=None, cursor=None, limit=50) -> tuple[list, dict, str | None]:
    """The daily queue: the department's tasks open today (or on `date`) or overdue, most urgent first.

    Keyset-paginated; the cursor keeps the first page's "now" so the order holds across pages.
    """
    if department is not None:
        department = department_for(actor, department)
    key = None
    if cursor:
        now, key = decode_cursor(cursor)
    day = date or local(now).date()
    own = not sees_all_departments(actor)
    params = {"now": now, "end_of_day": _end_of(day), "scope": actor.department_id,
              "department": department, "pathway": pathway, "state": state}
    if assignee == "me":
        params["assignee"] = actor.user_id
    elif assignee and assignee != "none":
        params["assignee"] = int(assignee)
    if key is not None:
        params.update(zip(("k_urgent", "k_overdue", "k_sort", "k_id"), key))
    stmt = _queue_statement(rows, own, department is not None, bool(pathway),
                            "none" if assignee == "none" else "one" if assignee else None,
                            bool(state), key is not None)

    def read(n: int):
        if rows:  # plain rows: through the connection, not the ORM
            width = len(PAGE_TASK)
            return [(_task_row(row[:width]), _patient_row(row[width:]))
                    for row in db.session.connection().execute(stmt, {**params, "limit": n})]
        return [(row[0], _patient_row(row[1:])) for row in db.session.execute(stmt, {**params, "limit": n})]

    def cursor_after(pair) -> str:
        last = pair[0]
        is_overdue = of(last, now) == Timeliness.OVERDUE
        return encode_cursor(now, (0 if last.alarm else 1 if last.is_urgent else 2, 0 if is_overdue else 1,
                                   last.closes_at if is_overdue else last.due_at, last.id))

    pairs, next_cursor = keyset_page(read, limit, cursor_after)
    return [task for task, _patient in pairs], {patient.id: patient for _task, patient in pairs}, next_cursor


@functools.lru_cache(maxsize=16)
def _counts_statement(own_department: bool, department: bool, mine: bool):
    label = timeliness_sql(Task, NOW)
    # One round trip: the queue by timeliness (with its urgent calls), then my open tasks in any department.
    stmt = (_queue_where(sa.select(label, sa.func.count(), sa.func.sum(sa.case((Task.is_urgent, 1), else_=0)))
                         .select_from(Task), own_department, department).group_by(label))
    if mine:
        stmt = sa.union_all(stmt, sa.select(sa.literal(MINE), sa.func.count(), sa.literal(0)).select_from(Task)
                            .where(Task.assignee_id == sa.bindparam("me"), is_open(Task)))
    return stmt


def counts(actor: Actor, *, now: datetime, department=None) -> dict:
    """Today's queue by timeliness (due, overdue, not yet open today), urgent calls and my tasks."""
    if department is not None:
        department = department_for(actor, department)
    stmt = _counts_statement(not sees_all_departments(actor), department is not None, bool(actor.user_id))
    params = {"now": now, "end_of_day": _end_of(local(now).date()), "scope": actor.department_id,
              "department": department, "me": actor.user_id}
    by, urgent, mine = {}, 0, 0
    for name, count, urgent_count in db.session.connection().execute(stmt, params):
        if name == MINE:
            mine = count
        else:
            by[name] = count
            urgent += urgent_count or 0
    return {"due": by.get("due", 0), "overdue": by.get("overdue", 0), "not_open": by.get("not_open", 0),
            "urgent": urgent, "mine": mine, "total": sum(by.values())}


def patients_of(tasks) -> dict[int, Patient]:
    ids = {t.patient_id for t in tasks}
    if not ids:
        return {}
    return {p.id: p for p in db.session.scalars(sa.select(Patient).where(Patient.id.in_(ids)))}


def phone_for(task: Task, patient: Patient, actor: Actor) -> str | None:
    """The patient's phone: unmasked only for the nurse holding the task (and that read is audited)."""
    if actor.user_id is not None and task.assignee_id == actor.user_id:
        if patient.phone:
            audit.note_read(actor.audit_name, "patient.read_phone", "patient", patient.id, task_id=task.id)
        return patient.phone
    return mask_phone(patient.phone)


#: present()'s default: read the call's invitation with its delivery log (one call, not a list).
READ = object()


def present(task: Task, actor: Actor, now: datetime, patient: Patient | None = None, invitation=READ) -> dict:
    """A task (or a queue_page row) as this actor may see it (TaskOut). A list passes each call's invitation (or
    None), read for the whole page at once (invitations.of_tasks); one call reads its own, with its log."""
    patient = patient or db.session.get(Patient, task.patient_id)
    if isinstance(task, tuple):  # a queue_page row: SHOWN's columns come first, in order
        data = dict(zip(SHOWN, task))
    else:
        data = {name: getattr(task, name) for name in SHOWN}
    data["date_of_death"] = task.died_on
    timeliness = of(task, now)
    data["timeliness"] = timeliness.value if timeliness else None
    data["patient"] = {"id": patient.id, "mrn": patient.mrn, "name": patient.name, "sex": patient.sex,
                       "phone": phone_for(task, patient, actor)}
    if invitation is READ:
        invitation = invitations.invitation_of(task)
        data["invitation"] = invitations.present(invitation, messages=invitations.messages_of(invitation))
    else:
        data["invitation"] = invitations.present(invitation)
    return data


def attempts(task: Task) -> list[Attempt]:
    return list(db.session.scalars(sa.select(Attempt).where(Attempt.task_id == task.id).order_by(Attempt.id)))


def _newest_first(model, actor: Actor, *, department=None, state=None, patient=None, cursor=None, limit=50,
                  where=()):
    """A department's plans, calls or possible events (quality: all, or the one asked for), newest first,
    keyset-paginated by id; optionally one state or one patient (HIS id or record number), and `where`."""
    columns = [getattr(model, c) for c in getattr(model, "__scope_columns__", ("department_id",))]
    stmt = scoped(sa.select(model).where(*where), columns, actor).order_by(model.id.desc())
    if department is not None:
        stmt = scoped_to(stmt, columns, department_for(actor, department))
    if state:
        stmt = stmt.where(model.state == state)
    if patient:
        stmt = stmt.where(model.patient_id.in_(patients_named(patient)))
    if cursor:
        stmt = stmt.where(model.id < cursor)
    return keyset_page(lambda n: db.session.scalars(stmt.limit(n)), limit, key=lambda row: row.id)


def plans(actor: Actor, **filters) -> tuple[list[Plan], int | None]:
    """The department's plans (_newest_first's filters)."""
    return _newest_first(Plan, actor, **filters)


def calls(actor: Actor, **filters) -> tuple[list[Task], int | None]:
    """The department's calls in every state (_newest_first's filters): the queue shows the open ones."""
    return _newest_first(Task, actor, **filters)


def plan_tasks(plan: Plan) -> list[Task]:
    return list(db.session.scalars(sa.select(Task).where(Task.plan_id == plan.id).order_by(Task.occurrence)))


def assignable_users(department_id: int) -> list[User]:
    """Who a task of this department can be given to."""
    stmt = (sa.select(User).join(UserRole).where(User.is_active.is_(True), User.department_id == department_id,
                                                 UserRole.role.in_([Role.NURSE, Role.DEPT_HEAD]))
            .order_by(User.display_name).distinct())
    return list(db.session.scalars(stmt))


def user_names(ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(User.id, User.display_name).where(User.id.in_(ids))).all())


def prompts(actor: Actor, *, source=None, trigger=None, start=None, end=None,
            **filters) -> tuple[list[EventPrompt], int | None]:
    """The possible events the actor reviews (a head: their department's; the quality office: all), newest
    first (_newest_first's filters); by source (followup_call, trigger), one trigger's code, or the days they
    were raised in (`start`, `end`, hospital time: the statistics' drill-down)."""
    where = []
    if start:
        where.append(EventPrompt.created_at >= local_midnight(start, hospital_tz()))
    if end:
        where.append(EventPrompt.created_at < local_midnight(end + timedelta(days=1), hospital_tz()))
    if source:
        where.append(EventPrompt.task_id.is_not(None) if source == "followup_call" else EventPrompt.trigger_id.is_not(None))
    if trigger:
        where.append(EventPrompt.trigger_id == sa.select(Trigger.id).where(Trigger.code == trigger).scalar_subquery())
    return _newest_first(EventPrompt, actor, where=where, **filters)


def protocols(current_only: bool = False) -> list[Protocol]:
    stmt = sa.select(Protocol)
    if current_only:
        stmt = stmt.where(Protocol.is_current.is_(True))
    return list(db.session.scalars(stmt.order_by(Protocol.code, Protocol.version_no.desc())))


def load_protocol(protocol_id: int) -> Protocol:
    protocol = db.session.get(Protocol, protocol_id)
    if protocol is None:
        raise NotFound()
    return protocol


def patient_record(patient_id: int, actor: Actor) -> tuple[Patient, list[Plan], dict[int, list[Task]]]:
    """A patient's plans (of the actor's departments) and their tasks, for the record sheet."""
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        raise NotFound()
    plans = list(db.session.scalars(scoped(sa.select(Plan).where(Plan.patient_id == patient_id), Plan.department_id,
                                           actor).order_by(Plan.enrolled_at, Plan.id)))
    if not plans:
        raise NotFound()
    tasks: dict[int, list[Task]] = {plan.id: [] for plan in plans}
    for task in db.session.scalars(sa.select(Task).where(Task.plan_id.in_(list(tasks))).order_by(Task.occurrence)):
        tasks[task.plan_id].append(task)
    return patient, plans, tasks


def prompt_of(task: Task) -> EventPrompt | None:
    """The possible-event prompt a completed call raised for the quality office, if any."""
    return db.session.scalar(sa.select(EventPrompt).where(EventPrompt.task_id == task.id))


def sources(plans) -> dict[int, dict]:
    """What each plan follows, as a person reads it: the operation's name and day, the day-surgery
    discharge, the cancer diagnosis, or a manual enrolment (never the "operation:12" key)."""
    plans = list(plans)
    by_type = collections.defaultdict(set)
    for plan in plans:
        if plan.source_id is not None:
            by_type[plan.source_type].add(plan.source_id)
    operations = {o.id: o for o in db.session.scalars(sa.select(Operation).where(
        Operation.id.in_(by_type["operation"])))} if by_type["operation"] else {}
    encounters = {e.id: e for e in db.session.scalars(sa.select(Encounter).where(
        Encounter.id.in_(by_type["encounter"])))} if by_type["encounter"] else {}
    diagnoses = {d.id: d for d in db.session.scalars(sa.select(CancerDiagnosis).where(
        CancerDiagnosis.id.in_(by_type["diagnosis"])))} if by_type["diagnosis"] else {}
    found = {}
    for plan in plans:
        source = {"kind": plan.source_type, "name": None, "on": local(plan.anchor_at).date()}
        if plan.source_type == "operation" and plan.source_id in operations:
            operation = operations[plan.source_id]
            source["name"] = operation.procedure.name if operation.procedure else None
            source["on"] = local(operation.performed_at or operation.planned_at).date()
        elif plan.source_type == "encounter" and plan.source_id in encounters:
            encounter = encounters[plan.source_id]
            source["on"] = local(encounter.discharged_at or encounter.admitted_at).date()
        elif plan.source_type == "diagnosis" and plan.source_id in diagnoses:
            source["on"] = diagnoses[plan.source_id].diagnosed_on
        found[plan.id] = source
    return found
