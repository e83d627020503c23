"""The shipped deployment files (deploy/): units, nginx without client addresses on the anonymous
routes, and the PostgreSQL runtime role that can only INSERT and SELECT the audit trail (I2, A2)."""
from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL, ROOT

DEPLOY = os.path.join(ROOT, "deploy")
ANONYMOUS_LOCATIONS = ["= /report", "^~ /report/", "= /receipt", "^~ /receipt/", "= /api/v1/events",
                       "^~ /api/v1/receipts/", "^~ /static/"]


def read(*parts):
    with open(os.path.join(DEPLOY, *parts), encoding="utf-8") as f:
        return f.read()


def unit(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(read("systemd", name))
    return parser


def test_units_run_gunicorn_with_the_one_config_and_one_scheduler():
    web, scheduler = unit("qcflow-web.service"), unit("qcflow-scheduler.service")
    assert web["Service"]["ExecStart"].endswith("gunicorn -c scripts/gunicorn.conf.py wsgi:app")
    assert os.path.exists(os.path.join(ROOT, "scripts", "gunicorn.conf.py"))
    assert scheduler["Service"]["ExecStart"].endswith("qcflow scheduler run")
    for service in (web, scheduler):
        assert service["Service"]["User"] == "qcflow" and service["Service"]["NoNewPrivileges"] == "yes"
        assert service["Service"]["EnvironmentFile"] == "/etc/qcflow/qcflow.env"


def test_nginx_logs_no_client_address_anywhere_and_nothing_on_anonymous_routes():
    site, anonymous, proxy = read("nginx", "qcflow.conf"), read("nginx", "qcflow-anonymous.conf"), read("nginx", "qcflow-proxy.conf")
    formats = re.findall(r"log_format\s+\w+\s+([^;]+);", site)
    assert formats
    for variable in ("$remote_addr", "$http_x_forwarded_for", "$http_user_agent", "$http_referer", "$request ",
                     "$args", "$query_string", "$remote_user", "$realip_remote_addr"):
        assert all(variable not in fmt for fmt in formats), variable
    for location in ANONYMOUS_LOCATIONS:
        assert re.search(r"location\s+" + re.escape(location) + r"\s*\{\s*include snippets/qcflow-anonymous.conf;", site), location
    assert re.search(r"^access_log off;", anonymous, re.M)
    assert "include snippets/qcflow-proxy.conf;" in anonymous
    assert 'proxy_set_header X-Forwarded-For "";' in proxy and 'proxy_set_header X-Real-IP "";' in proxy
    assert "Strict-Transport-Security" in site and "return 301 https://" in site


def test_nginx_limits_anonymous_submissions_per_address_without_logging_them():
    site, anonymous = read("nginx", "qcflow.conf"), read("nginx", "qcflow-anonymous.conf")
    key = re.search(r"map \$request_method \$(\w+) \{\s*POST\s+\$binary_remote_addr;\s*default\s+\"\";\s*\}", site)
    assert key, "only POSTs are counted"
    zone = re.search(r"limit_req_zone \$" + key.group(1) + r" zone=(\w+):\d+m rate=(\d+)r/m;", site)
    assert zone and 1 <= int(zone.group(2)) <= 60
    assert re.search(r"^limit_req zone=" + zone.group(1) + r" burst=\d+ nodelay;", anonymous, re.M)
    assert re.search(r"^limit_req_status 429;", anonymous, re.M)
    # nginx writes a refusal at limit_req_log_level; it must stay below the snippet's error_log level.
    levels = ["debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"]
    logged = re.search(r"^limit_req_log_level (\w+);", anonymous, re.M).group(1)
    threshold = re.search(r"^error_log \S+ (\w+);", anonymous, re.M).group(1)
    assert levels.index(logged) < levels.index(threshold)


def test_nginx_holds_photo_uploads_without_a_login_to_a_few_a_minute_per_address():
    """An upload costs seconds of a worker: the public forms' multipart POSTs have a stricter zone of their own."""
    site = read("nginx", "qcflow.conf")
    key = re.search(r'map "\$request_method:\$content_type" \$(\w+) \{\s*"~\^POST:multipart/form-data"\s+'
                    r'\$binary_remote_addr;\s*default\s+"";\s*\}', site)
    assert key, "only multipart POSTs are counted"
    zone = re.search(r"limit_req_zone \$" + key.group(1) + r" zone=(\w+):\d+m rate=(\d+)r/m;", site)
    assert zone and 1 <= int(zone.group(2)) <= 10
    for location in ("= /report", "^~ /report/", "= /receipt"):
        block = re.search(r"location\s+" + re.escape(location) + r"\s*\{([^}]*)\}", site).group(1)
        assert "include snippets/qcflow-anonymous.conf;" in block
        assert re.search(r"limit_req zone=" + zone.group(1) + r" burst=\d+ nodelay;", block), location


def test_nginx_logs_nothing_of_a_patients_link_and_slows_guessed_links_per_address():
    site = read("nginx", "qcflow.conf")
    block = re.search(r"location \^~ /f/ \{([^}]*)\}", site)
    assert block, "the patients' page has its own location"
    body = block.group(1)
    zone = re.search(r"limit_req_zone \$binary_remote_addr zone=(\w+):\d+m rate=(\d+)r/m;", site)
    assert zone and int(zone.group(2)) >= 30  # a page saving answers as the patient types is not held back
    assert re.search(r"access_log off;", body) and re.search(r"limit_req zone=" + zone.group(1) + r" burst=\d+", body)
    assert "include snippets/qcflow-proxy.conf;" in body
    levels = ["debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"]
    logged = re.search(r"limit_req_log_level (\w+);", body).group(1)
    threshold = re.search(r"error_log \S+ (\w+);", body).group(1)
    assert levels.index(logged) < levels.index(threshold)


def test_deploy_md_points_at_the_shipped_files():
    with open(os.path.join(ROOT, "docs", "deploy.md"), encoding="utf-8") as f:
        guide = f.read()
    for path in ("deploy/systemd/qcflow-web.service", "deploy/systemd/qcflow-scheduler.service",
                 "deploy/nginx/qcflow.conf", "deploy/nginx/qcflow-anonymous.conf", "deploy/nginx/qcflow-proxy.conf",
                 "deploy/postgresql/app-role.sql"):
        assert path in guide, path


@pytest.mark.skipif(PG_URL is None or shutil.which("psql") is None, reason="PostgreSQL role and grants")
def test_the_app_role_can_insert_and_read_the_audit_trail_but_never_change_it(app, ctx, now):
    from qcflow.core import audit
    from qcflow.extensions import db
    from tests.conftest import make_app

    url = sa.engine.make_url(PG_URL)
    role, password = f"qcflow_app_{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    owner = url.username or "postgres"
    psql_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
    db.session.commit()
    result = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"app_password={password}",
                             "-v", f"app_role={role}", "-v", f"owner={owner}", "-v", f"dbname={url.database}",
                             "-d", psql_url, "-f", os.path.join(DEPLOY, "postgresql", "app-role.sql")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    as_app = url.set(username=role, password=password).render_as_string(hide_password=False)
    try:
        app_role_app = make_app(as_app, str(app.instance_path))
        with app_role_app.app_context():
            audit.record("user:1", "test.grant", "thing", 1, now, after={"ok": True})
            db.session.commit()
            assert audit.verify().ok
            for statement in ("UPDATE audit_entry SET actor = 'x'", "DELETE FROM audit_entry", "TRUNCATE audit_entry"):
                with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                    db.session.execute(sa.text(statement))
                db.session.rollback()
            db.session.remove()
            db.engine.dispose()
    finally:
        admin = sa.create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
        admin.dispose()


def days(value: str) -> float:
    """A journald time span (190day, 6month, 26week, 1y…) in days."""
    number, unit = re.fullmatch(r"(\d+)\s*([a-z]*)", value.strip()).groups()
    per = {"day": 1, "d": 1, "week": 7, "w": 7, "month": 30.44, "m": 30.44 / 43200, "year": 365.25, "y": 365.25}
    return int(number) * per[unit]


def test_security_logs_are_kept_at_least_six_months():
    """网络安全法 Art. 21: the shipped journald and nginx logrotate settings keep ≥ 183 days."""
    journal = configparser.ConfigParser(interpolation=None)
    journal.read_string(read("journald", "qcflow.conf"))
    assert journal["Journal"]["Storage"] == "persistent"
    assert days(journal["Journal"]["MaxRetentionSec"]) >= 183
    rotate = read("logrotate", "qcflow-nginx")
    period = {"daily": 1, "weekly": 7, "monthly": 30}[re.search(r"^\s*(daily|weekly|monthly)\s*$", rotate, re.M).group(1)]
    kept = int(re.search(r"^\s*rotate\s+(\d+)\s*$", rotate, re.M).group(1))
    assert kept * period >= 183
    assert not re.search(r"^\s*(maxage|maxsize|size)\b", rotate, re.M)  # nothing else drops files earlier
    with open(os.path.join(ROOT, "docs", "deploy.md"), encoding="utf-8") as f:
        guide = f.read()
    assert "deploy/journald/qcflow.conf" in guide and "deploy/logrotate/qcflow-nginx" in guide
