"""The domains meet only through each other's public modules and the reactions table.

The rule, checked on the source of qcflow/ (an AST scan, so an import that never runs counts too):

1. A domain is a package of qcflow/: auth, clinical, events, extraction, followup, indicators, mdt, notify,
   reports, scheduling. `core` is the shared kernel; `extensions` and `config` are kernel modules too.
2. A domain module may import, from another domain, only that domain's public modules — `models`,
   `workflow`, `queries`, `services` (and the modules of a `services` package), plus the few modules
   listed in PUBLIC_EXTRA, each the one home of a concept others must share — and only names without
   a leading underscore. Never another domain's views, api, schemas, jobs or other helper modules.
   A capability built as a sub-package of a domain (followup.invitations) has public modules of its own,
   by the same names.
3. `qcflow.reactions` is the one other way across: facts are published and questions asked there,
   and `create_app` installs the table. Any domain may import it.
4. A domain imports another domain at the top of the module only: a function-local import hides a
   dependency (and usually a cycle) from the reader.
5. `core` imports no domain and not the reactions table: domains register into the kernel at app
   creation (label kinds, template helpers, the user lookup of timelines), never the other way round.
   One exception, KERNEL_SEES: `core.db.import_all_models` imports every domain's models so that the
   metadata is complete for migrations and tests.
6. Entry points outside the domains (`cli`, `demo`) follow rule 2 too — the command line and the demo
   data call services, not pages — except that the CLI starts the scheduler (`scheduling.runner`,
   `scheduling.jobs`) and reads intake files with the CSV reader the intake page uses
   (`clinical.intake_csv`). They may import inside functions (a command loads what it needs). `qcflow/__init__`
   (create_app, which registers every blueprint) and `reactions` are the composition root and are not
   checked.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "qcflow"
DOMAINS = {"auth", "clinical", "events", "extraction", "files", "followup", "indicators", "mdt", "notify", "reports",
           "scheduling"}
KERNEL = {"core", "extensions", "config"}
PUBLIC = {"models", "workflow", "queries", "services"}
PUBLIC_EXTRA = {
    "auth": {"permissions", "ratelimit"},  # the permission matrix, scoping and the access decorators
    "events": {"scrub"},  # the one scrubber of personal names (reports' exports and analyses reuse it)
    "followup": {"timeliness"},  # the one definition of a call's timeliness
    # the one definition of each indicator; the services of reported values (the demo enters some); the one
    # survival estimate (the bulletin prints its curves)
    "indicators": {"definitions", "reporting", "survival"},
    # the one definition of the death-discussion deadlines (7 days, 5 working days); the MDT clinics' services
    "mdt": {"deadlines", "clinics"},
    "notify": {"mail"},  # the one SMTP client (notifications' e-mail; the follow-up invitations' e-mail sender)
    "reports": {"charts", "pdf"},  # the renderers of trend charts and PDF documents
}
#: Capabilities built as a sub-package of a domain: their modules are checked as the domain's own.
SUBPACKAGES = {"followup": {"invitations"}, "events": {"lessons"}}
KERNEL_SEES = {("core/db.py", "models")}
ENTRY_POINTS = {"cli", "demo"}
#: What an entry point may use beyond the public modules.
ENTRY_EXTRA = {("scheduling", "runner"), ("scheduling", "jobs"), ("clinical", "intake_csv")}
NOT_CHECKED = {"__init__", "reactions"}


def _imports(tree: ast.Module):
    """(line, dotted module path, imported names, is function-local) for every qcflow import."""
    local = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            local.update(id(inner) for inner in ast.walk(node) if inner is not node)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "qcflow":
            for alias in node.names:
                yield node.lineno, node.module, alias.name, id(node) in local
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "qcflow":
                    yield node.lineno, alias.name, None, id(node) in local


def _target(module: str, name: str | None) -> list[str]:
    """The path imported, as parts after `qcflow`: `from qcflow.reports import pdf` is reports.pdf."""
    parts = module.split(".")[1:]
    if name is not None and len(parts) == 1 and parts[0] in DOMAINS:
        parts.append(name)  # a module of the package (a package's own names are its modules here)
    if len(parts) >= 2 and parts[0] in DOMAINS and parts[1] in SUBPACKAGES.get(parts[0], ()):
        parts = [parts[0]] + parts[2:] + ([name] if name is not None and len(parts) == 2 else [])
    return parts


def violations(root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        owner = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if owner in NOT_CHECKED or (owner not in DOMAINS | {"core"} | ENTRY_POINTS):
            continue
        for line, module, name, is_local in _imports(ast.parse(path.read_text(), str(path))):
            parts = _target(module, name)
            if not parts:
                continue
            where = f"{rel}:{line} imports {module}{'.' + name if name else ''}"
            target = parts[0]
            if owner == "core":
                if target not in KERNEL and (rel.as_posix(), parts[-1]) not in KERNEL_SEES:
                    found.append(f"{where}: the kernel imports no domain")
                continue
            if target == owner or target in KERNEL or target == "reactions":
                continue
            if target not in DOMAINS:
                continue
            private = [p for p in parts[1:] + ([name] if name else []) if p.startswith("_")]
            module_ok = len(parts) >= 2 and (parts[1] in PUBLIC | PUBLIC_EXTRA.get(target, set()) or (
                owner in ENTRY_POINTS and (target, parts[1]) in ENTRY_EXTRA))
            if private:
                found.append(f"{where}: private name of another domain")
            elif not module_ok:
                found.append(f"{where}: {'.'.join(parts[:2])} is not a public module of {target}")
            if is_local and owner not in ENTRY_POINTS:
                found.append(f"{where}: imports another domain inside a function")
    return found


def test_domains_meet_only_through_public_modules_and_the_reactions_table():
    found = violations()
    assert not found, "\n".join(found)


def test_the_scan_sees_each_kind_of_violation(tmp_path):
    """The rule itself: each forbidden import is reported, the allowed ones are not."""
    files = {
        "core/kernel.py": "from qcflow.auth.models import User\nfrom qcflow.core.time import local\n",
        "events/ok.py": "from qcflow import reactions\nfrom qcflow.mdt.services import has_signed_case_review\n"
                        "from qcflow.followup.services.tasks import claim_task\nfrom qcflow.events import views\n",
        "events/views_in.py": "from qcflow.clinical.views import read_csv\n",
        "events/private.py": "from qcflow.mdt.services import _open\n",
        "events/package.py": "from qcflow.reports import bulletin\n",
        "events/lazy.py": "def f():\n    from qcflow.mdt.queries import timeline\n",
        "cli.py": "def f():\n    from qcflow.scheduling.runner import run_job\n    from qcflow.clinical.views import x\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = violations(tmp_path)
    assert [f.split(" imports ")[0] for f in found] == [
        "cli.py:3", "core/kernel.py:1", "events/lazy.py:2", "events/package.py:1", "events/private.py:1",
        "events/views_in.py:1",
    ], found
