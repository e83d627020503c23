"""The benchmark harness runs (small scale) and its correctness check holds; ratios are printed."""
import os
import re
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL, ROOT, die_with_parent


@pytest.fixture
def bench_url(tmp_path):
    if not PG_URL:
        yield f"sqlite:///{tmp_path}/bench.sqlite3"
        return
    url = sa.engine.make_url(PG_URL)
    name = f"{url.database}_bench_{uuid.uuid4().hex[:8]}"
    yield url.set(database=name).render_as_string(hide_password=False)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_bench_smoke_scale_s(bench_url, tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--db", "postgres" if PG_URL else "sqlite", "--scale", "S",
         "--scenario", "all", "--plans", "3000", "--database-url", bench_url, "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "QCFLOW_INSTANCE_PATH": str(tmp_path)}, preexec_fn=die_with_parent)
    assert run.returncode in (0, 1), run.stderr[-3000:]
    lines = run.stdout.splitlines()
    for scenario in ("P1 generate_day", "P3 catch_up_30d", "P2 o_due_scaling"):
        row = next(line for line in lines if line.startswith(scenario) and "correctness" not in line)
        assert re.search(r"\d+\.\d+ms\s+\d+\.\d+ms\s+[\d.]+x", row), row
        assert re.search(rf"^{scenario}: correctness .* PASS;", run.stdout, re.M), run.stdout
    assert out.exists()
