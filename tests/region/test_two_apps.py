"""Two installations on localhost, two databases: a hospital's qcflow sends its approved months to the centre's
qcflow (gunicorn, INSTALLATION_ROLE=centre, set up through its command line as an operator would) over HTTP; a
correction arrives as version 2; a centre that is down leaves the submission waiting, and nothing is lost; the
hospital reads where it stands among its peers from the centre's signed answer."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from qcflow.core.periods import add_months, month_start
from qcflow.region import protocol
from tests.conftest import ROOT, die_with_parent, logged_in, make_app
from tests.security.conftest import free_port, gunicorn

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
def hospital_layout():
    departments = {"surgery": {"code": "GS", "name": "普通外科"},
                   "qc": {"code": "QC", "name": "质控办", "kind": "functional"}}
    people = {"head": ("head", "dept_head", "surgery"), "quality": ("quality", "quality", "qc")}
    return departments, people


class Centre:
    """The centre's installation: its command line now, its web server once started."""

    def __init__(self, instance):
        self.instance = instance
        self.url = f"sqlite:///{instance}/centre.sqlite3"
        self.env = {**os.environ, "QCFLOW_DATABASE_URL": self.url, "QCFLOW_INSTANCE_PATH": str(instance),
                    "QCFLOW_INSTALLATION_ROLE": "centre", "QCFLOW_SECRET_KEY": "centre-test"}

    def flask(self, *args) -> str:
        run = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, timeout=120, preexec_fn=die_with_parent)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        return run.stdout

    def get(self, base, path, token):
        request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture
def centre(tmp_path):
    instance = tmp_path / "centre"
    instance.mkdir()
    made = Centre(instance)
    made.flask("db", "upgrade")
    made.public_key = made.flask("qcflow", "region", "keygen").strip().splitlines()[-1]
    made.flask("qcflow", "departments", "create", "--code", "QCC", "--name", "省质控中心", "--kind", "functional")
    made.flask("qcflow", "users", "create", "--username", "centre", "--password", "centre-password-1",
               "--role", "centre", "--department", "QCC")
    made.token = made.flask("qcflow", "tokens", "create", "--username", "centre").strip().splitlines()[-1]
    return made


def real_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def months():
    """The two latest months whose reporting deadline has passed, by the real clock (the centre checks signing
    times against its own clock, so the hospital sends at the real time)."""
    from qcflow.core.time import today

    this_month = month_start(today(real_now()))
    # The deadline of last month may not have passed yet: take the two months before it.
    return add_months(this_month, -3), add_months(this_month, -2)


@pytest.fixture
def hospital_app(database_url, tmp_path, centre, months):
    own = tmp_path / "hospital-key.pem"
    protocol.write_private_key(str(own), protocol.generate_key())
    app = make_app(database_url, str(tmp_path / "hospital"), HOSPITAL_CODE="H001",
                   REGION_CENTRE_URL="http://127.0.0.1:9", REGION_CENTRE_KEY=centre.public_key,
                   REGION_KEY_FILE=str(own), REGION_SEND_FROM=f"{months[0]:%Y-%m}", REGION_TIMEOUT_SECONDS=5)
    centre.flask("qcflow", "region", "hospitals", "add", "--code", "H001", "--name", "第一人民医院",
                 "--level", "tertiary", "--ownership", "public", "--region", "郑州市",
                 "--key", protocol.public_key_text(protocol.load_private_key(str(own))))
    return app


@pytest.fixture
def app(hospital_app):
    """The hospital's app is the app of this module's fixtures (hospital, clients)."""
    return hospital_app


def report(hospital, month, numerator, denominator):
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.indicators import reporting

    at = datetime.combine(add_months(month, 1), datetime.min.time(), tzinfo=timezone.utc) + timedelta(days=2)
    value, _status = reporting.submit("pain_assessment_rate", month, hospital["surgery"].id,
                                      actor=Actor.for_user(hospital["head"]), now=at, numerator=numerator,
                                      denominator=denominator)
    reporting.decide(value, "approve", actor=Actor.for_user(hospital["quality"]), now=at,
                     expected_version=value.version)
    db.session.commit()
    return value


def queue_and_send(now):
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.region import outbox
    from qcflow.region.models import RegionOutbox

    outbox.queue_due(actor=Actor.system("region.queue"), now=now)
    db.session.commit()
    outbox.send_due(now=now)
    db.session.expire_all()
    return {(row.period, row.revision): row for row in db.session.scalars(
        sa.select(RegionOutbox).where(RegionOutbox.kind == "month"))}


@pytest.fixture
def surgery_reports_pain(hospital):
    from qcflow.extensions import db
    from qcflow.indicators.models import IndicatorSetup

    db.session.add(IndicatorSetup(code="pain_assessment_rate", method="reported", department_id=hospital["surgery"].id,
                                  updated_at=real_now(), updated_by="system:test"))
    db.session.commit()
    return hospital


def test_approved_months_travel_signed_to_the_centre_and_a_correction_replaces_them(
        app, surgery_reports_pain, centre, months, tmp_path):
    from qcflow.extensions import db

    hospital = surgery_reports_pain
    first, second = months
    with app.app_context():
        report(hospital, first, 90, 100)
        late_id = report(hospital, second, 45, 60).id
    down = f"http://127.0.0.1:{free_port()}"
    app.config["REGION_CENTRE_URL"] = down
    now = real_now()
    with app.app_context():
        rows = queue_and_send(now)
        assert {key: row.state for key, row in rows.items()} == {
            (f"{first:%Y-%m}", 1): "waiting", (f"{second:%Y-%m}", 1): "waiting"}
        assert all(row.next_attempt_at > now and row.last_error for row in rows.values())

    with gunicorn(centre.url, centre.instance, tmp_path / "centre.log", workers=2,
                  QCFLOW_INSTALLATION_ROLE="centre") as server:
        app.config["REGION_CENTRE_URL"] = server.base_url
        later = now + timedelta(minutes=2)
        with app.app_context():
            rows = queue_and_send(later)
            assert {row.state for row in rows.values()} == {"accepted"}
            receipt = rows[(f"{first:%Y-%m}", 1)].answer
            assert receipt["hospital"] == "H001" and receipt["version"] == 1 and receipt["values"] >= 1

        received = centre.get(server.base_url, "/api/v1/centre/submissions?hospital=H001", centre.token)
        periods = {(item["period"], item["version"]) for item in received["items"]}
        assert {(f"{first:%Y-%m}", 1), (f"{second:%Y-%m}", 1)} <= periods

        # The quality office re-opens the second month, the department corrects it, it is approved again.
        with app.app_context():
            from qcflow.core.actors import Actor
            from qcflow.indicators import reporting
            from qcflow.indicators.models import IndicatorReport

            value = db.session.get(IndicatorReport, late_id)
            reporting.decide(value, "reopen", actor=Actor.for_user(hospital["quality"]), now=later,
                             expected_version=value.version, reason="分母漏计日间病例")
            value, _status = reporting.submit("pain_assessment_rate", second, hospital["surgery"].id, numerator=54,
                                              denominator=60, actor=Actor.for_user(hospital["head"]), now=later,
                                              expected_version=value.version)
            reporting.decide(value, "approve", actor=Actor.for_user(hospital["quality"]), now=later,
                             expected_version=value.version)
            db.session.commit()
            rows = queue_and_send(later + timedelta(minutes=1))
            corrected = rows[(f"{second:%Y-%m}", 2)]
            assert corrected.state == "accepted" and corrected.answer["replaced"] == 1

        comparison = centre.get(
            server.base_url, f"/api/v1/centre/indicators/pain_assessment_rate?from={second:%Y-%m}&to={second:%Y-%m}",
            centre.token)
        assert json.dumps(comparison, ensure_ascii=False).count("H001") >= 1
        assert 90.0 in _numbers(comparison)  # 54 / 60: the corrected value counts, not 45 / 60
        assert 75.0 not in _numbers(comparison)

        history = centre.get(server.base_url, f"/api/v1/centre/submissions?hospital=H001&period={second:%Y-%m}",
                             centre.token)
        assert sorted(item["version"] for item in history["items"]) == [1, 2]

        # Where the hospital stands among its peers: the hospital's page asks the centre with a signed request.
        quality = logged_in(app, hospital["quality"].username)
        # The centre answers one quarter that has ended: the last one holds the first month (90 of 100).
        quarter = protocol.last_quarter(month_start(real_now().date()))
        page = quality.get(f"/region/standing?indicator=pain_assessment_rate&from={quarter:%Y-%m}"
                           f"&to={add_months(quarter, 2):%Y-%m}")
        assert page.status_code == 200
        assert "90" in page.get_data(as_text=True)


def _numbers(document) -> set[float]:
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            found.add(round(float(node), 6))

    walk(document)
    return found
