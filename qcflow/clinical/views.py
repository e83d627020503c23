"""Operation pages (the booking gate) and the administrator's reference-data and CSV upload pages."""
from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from qcflow.auth.permissions import allowed, authenticated, current_actor
from qcflow.clinical import queries, services
from qcflow.clinical.intake_csv import example_row, read_csv, template
from qcflow.clinical.models import LISTED_DRUGS, SPECIALTIES
from qcflow.clinical.schemas import OperationTransitionIn
from qcflow.clinical.workflow import OPERATION_WORKFLOW
from qcflow.core.errors import BadRequest, NotFound
from qcflow.core.forms import load_form
from qcflow.core.time import now

bp = Blueprint("clinical", __name__)

REFERENCE_KINDS = ("procedures", "staff", "authorisations")
#: Uploaded here too: facts kept on paper (an outage, a backlog); the HIS sends them over the API.
HIS_KINDS = ("patients", "encounters", "operations", "diagnoses", "census", "transfers", "administrations",
             "lab_results")


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
    """Reference data (procedure catalogue, staff, surgeon authorisations) and HIS facts kept on paper: CSV
    template and upload; the reference lists."""
    if kind not in services.KINDS:
        raise NotFound()
    results, status = None, 200
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise BadRequest(_("Choose a CSV file to upload."))
        results = services.import_rows(kind, read_csv(upload.read()), actor=current_actor(), now=now(),
                                       example=example_row(services.KINDS[kind].schema),
                                       strict=bool(request.form.get("strict")), first_row=2)
        status = 422 if any(r.errors for r in results) else 200
    columns = list(services.KINDS[kind].schema._declared_fields)
    rows = queries.reference_table(kind, columns) if kind in REFERENCE_KINDS else None
    return render_template("clinical/reference.html", kind=kind, kinds=REFERENCE_KINDS, his_kinds=HIS_KINDS,
                           columns=columns, headings=queries.reference_headings(kind), rows=rows,
                           specialties=SPECIALTIES, drugs=LISTED_DRUGS, results=results), status


@bp.get("/admin/reference/<kind>/template.csv")
@allowed("administer")
def reference_template(kind):
    """The CSV template of a kind: header row and one example row."""
    if kind not in services.KINDS:
        raise NotFound()
    return Response(template(services.KINDS[kind].schema), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=qcflow-{kind}-template.csv"})
