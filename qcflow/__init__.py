"""qcflow: adverse events, follow-up, MDT and indicators for the medical-quality programme."""
from __future__ import annotations

import os

from flask import Flask


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: config, extensions, error handlers, blueprints, CLI. Starts nothing."""
    from qcflow.core.web import App

    app = App(
        __name__,
        instance_path=os.environ.get("QCFLOW_INSTANCE_PATH") or os.path.join(os.path.dirname(os.path.dirname(__file__)), "instance"),
        instance_relative_config=True,
        template_folder="../templates",
    )
    from qcflow.config import Config
    from qcflow.core.logs import install_log_escaping

    install_log_escaping()

    app.config.from_object(Config)
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("QCFLOW")
    else:
        app.config.update(test_config)

    from qcflow.core.web import check_production_config, database_uri

    check_production_config(app)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri(app)

    from qcflow.extensions import api, babel, csrf, db, login_manager, migrate
    from qcflow.core.db import include_object, render_item
    from qcflow.core.i18n import install_template_helpers, select_locale

    db.init_app(app)
    # G5/G6: keep foreign tables out, render our column types as plain SQLAlchemy types.
    migrate.init_app(app, db, render_as_batch=True, compare_type=True,
                     include_object=include_object, render_item=render_item)
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    api.init_app(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})

    from qcflow.auth.login import install_login
    from qcflow.auth.permissions import enforce_access
    from qcflow.core.db import configure_engine, end_read_only_transaction
    from qcflow.core.errors import register_error_handlers
    from qcflow.core.web import install_request_hooks

    with app.app_context():
        configure_engine(db.engine, sqlite_mmap=app.config["SQLITE_MMAP"])
    app.teardown_appcontext(end_read_only_transaction)
    register_error_handlers(app)
    install_login(app)
    from qcflow.region.installation import refuse_routes_of_the_other_installation

    def access():
        refuse_routes_of_the_other_installation()  # first: the other side's routes are 404 for everyone
        return enforce_access()

    install_request_hooks(app, access)
    install_template_helpers(app)
    _install_auth_helpers(app)

    from qcflow import reactions

    reactions.install(app)
    for blueprint in _blueprints():
        app.register_blueprint(blueprint)
    for blueprint in _api_blueprints():
        api.register_blueprint(blueprint)

    from qcflow.cli import register_cli

    register_cli(app)
    _check_choices(app)
    return app


def _check_choices(app: Flask) -> None:
    """Refuse to start with a setting whose value the code does not know (a typo would otherwise fail on the
    first page that reads it, or on the first death the HIS sends)."""
    from qcflow.files.storage import STORAGES
    from qcflow.indicators.catalogue import PLAN_KEYS
    from qcflow.mdt.deadlines import RULES

    for name, known in (("INDICATOR_PLAN", PLAN_KEYS), ("DEATH_DISCUSSION_DEADLINE", RULES),
                        ("INSTALLATION_ROLE", ("hospital", "centre")), ("ATTACHMENT_STORAGE", STORAGES)):
        chosen = app.config.get(name)
        if chosen not in known:
            raise RuntimeError(f"{name} (QCFLOW_{name}) is {chosen!r}: choose one of {', '.join(known)} "
                               "(docs/deploy.md, Configuration)")


def _install_auth_helpers(app: Flask) -> None:
    """Auth's part of every page, given to the kernel (which imports no domain): role labels, `can()` in
    templates ({% if can('handle_cases') %}: pages show what the permission matrix allows), the
    users a timeline names and the departments a code names (core.schemas.DepartmentId)."""
    import sqlalchemy as sa
    from flask_login import current_user

    from qcflow.auth.models import ROLE_LABELS, User
    from qcflow.auth.permissions import can
    from qcflow.auth.queries import department_id_by_code
    from qcflow.core.audit_labels import install_user_lookup
    from qcflow.core.schemas import DEPARTMENT_LOOKUP
    from qcflow.core.i18n import register_labels
    from qcflow.extensions import db

    register_labels({"auth_role": ROLE_LABELS})
    app.extensions[DEPARTMENT_LOOKUP] = department_id_by_code
    app.jinja_env.globals["can"] = lambda capability: can(current_user, capability)
    install_user_lookup(app, lambda ids: db.session.scalars(sa.select(User).where(User.id.in_(ids))))


def _blueprints():
    from qcflow.auth.views import bp as auth
    from qcflow.clinical.views import bp as clinical
    from qcflow.home import bp as home
    from qcflow.events.lessons.views import bp as lessons
    from qcflow.events.views import bp as events
    from qcflow.extraction.views import bp as extraction
    from qcflow.files.views import bp as files
    from qcflow.followup.invitations.views import bp as invitations
    from qcflow.followup.views import bp as followup
    from qcflow.indicators.views import bp as indicators
    from qcflow.mdt.views import bp as mdt
    from qcflow.notify.views import bp as notify
    from qcflow.region.centre_views import bp as centre
    from qcflow.region.registry_views import bp as centre_registry
    from qcflow.region.views import bp as region
    from qcflow.reports.views import bp as reports

    return (home, auth, events, lessons, clinical, mdt, notify, followup, invitations, extraction, indicators, reports,
            region, centre, centre_registry, files)


def _api_blueprints():
    from qcflow.auth.api import blp as auth_api
    from qcflow.clinical.api import blp as clinical_api
    from qcflow.events.api import blp as events_api
    from qcflow.events.lessons.api import blp as lessons_api
    from qcflow.extraction.api import blp as extraction_api
    from qcflow.files.api import blp as files_api
    from qcflow.followup.api import blp as followup_api
    from qcflow.followup.invitations.api import blp as invitations_api
    from qcflow.indicators.api import blp as indicators_api, intake_blp as indicator_intake_api
    from qcflow.mdt.api import blp as mdt_api
    from qcflow.notify.api import blp as notify_api
    from qcflow.region.api import blp as region_api
    from qcflow.region.centre_api import blp as centre_api
    from qcflow.region.receiving_api import blp as centre_intake_api
    from qcflow.reports.api import blp as reports_api

    return (auth_api, events_api, lessons_api, clinical_api, mdt_api, notify_api, followup_api, extraction_api,
            indicators_api, reports_api, indicator_intake_api, region_api, centre_intake_api, centre_api, invitations_api,
            files_api)
