"""Migrations: one head, and upgrading an empty database yields exactly the models."""
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from qcflow.core.db import Base, import_all_models, include_object
from tests.conftest import MIGRATIONS, PG_URL, make_app, migrate


def test_exactly_one_head():
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_migration_files_have_dated_names():
    import os
    import re

    names = [n for n in os.listdir(os.path.join(MIGRATIONS, "versions")) if n.endswith(".py")]
    assert names and all(re.match(r"^\d{8}_\d{4}_[0-9a-f]+_\w+\.py$", n) for n in names), names


@pytest.fixture
def scratch_database_url(tmp_path):
    """An empty database of the suite's kind."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path}/scratch.sqlite3"
        return
    url = sa.engine.make_url(PG_URL)
    name = f"{url.database}_mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_no_drift_between_models_and_migrations(scratch_database_url, tmp_path):
    app = make_app(scratch_database_url, str(tmp_path))
    migrate(app)
    import_all_models()
    engine = sa.create_engine(scratch_database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []
