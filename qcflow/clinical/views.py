"""Operation pages (the booking gate) and the administrator's reference-data pages."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _

from qcflow.auth.permissions import allowed, authenticated, current_actor
from qcflow.clinical import queries, services
from qcflow.clinical.intake_csv import read_csv
from qcflow.clinical.models import SPECIALTIES
from qcflow.clinical.schemas import OperationTransitionIn
from qcflow.clinical.workflow import OPERATION_WORKFLOW
from qcflow.core.errors import BadRequest, NotFound
from qcflow.core.forms import load_form
from qcflow.core.time import now

bp = Blueprint("clinical", __name__)

REFERENCE_KINDS = ("procedures", "staff", "authorisations")


@bp.get("/operations")
@authenticated
def operations():
    """Operations of my department, latest planned first."""
    return render_template("clinical/operations.html", items=queries.department_operations(current_actor()))


@bp.get("/operations/<int:operation_id>")
@authenticated
def operation(operation_id):
    """One operation: the booking gate's state and the steps available now."""
    actor = current_actor()
    item = queries.load_operation(operation_id, actor)
    missing = OPERATION_WORKFLOW.missing(item, "book")
    return render_template("clinical/operation.html", op=item, missing=missing,
                           discussions=queries.operation_discussions(item),
                           transitions=OPERATION_WORKFLOW.available(item, actor))


@bp.post("/operations/<int:operation_id>/transitions")
@allowed("operations")
def operation_transition(operation_id):
    """Book, perform or cancel from the operation page."""
    actor = current_actor()
    item = queries.load_operation(operation_id, actor)
    data = load_form(OperationTransitionIn(), list(OperationTransitionIn._declared_fields))
    action, version = data.pop("action"), data.pop("version")
    services.transition_operation(item, action, data, actor=actor, now=now(), expected_version=version)
    return redirect(url_for("clinical.operation", operation_id=operation_id))


@bp.route("/admin/reference/<kind>", methods=["GET", "POST"])
@allowed("administer")
def reference(kind):
    """Reference data (procedure catalogue, staff, surgeon authorisations): list and CSV upload."""
    if kind not in REFERENCE_KINDS:
        raise NotFound()
    results, status = None, 200
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise BadRequest(_("Choose a CSV file to upload."))
        results = services.import_rows(kind, read_csv(upload.read()), actor=current_actor(), now=now(),
                                       strict=bool(request.form.get("strict")), first_row=2)
        status = 422 if any(r.errors for r in results) else 200
    columns = list(services.KINDS[kind].schema._declared_fields)
    return render_template("clinical/reference.html", kind=kind, kinds=REFERENCE_KINDS, columns=columns,
                           headings=queries.reference_headings(kind), rows=queries.reference_table(kind, columns),
                           specialties=SPECIALTIES,
                           results=results), status
