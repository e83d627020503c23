"""A quality-control centre's staff member walks from completeness to one indicator across hospitals and on to one
hospital's profile, on a phone (390 px) and at a desk, in Chinese. Screenshots go to /tmp/shots-cmp/."""
from __future__ import annotations

import logging
import threading
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E, Server, check_no_horizontal_scroll, login

pytestmark = E2E

SHOTS = Path("/tmp/shots-cmp")
PASSWORD = "Centre-staff-2026-ok"
RATE = "stemi_reperfusion_rate"


@pytest.fixture(scope="module")
def server(database_template, tmp_path_factory):
    """A real HTTP server of a centre installation, over a fresh database with a few hospitals' months."""
    from werkzeug.serving import make_server

    from tests.conftest import module_app

    app = module_app(database_template, tmp_path_factory.mktemp("e2e-centre"), INSTALLATION_ROLE="centre")
    seed(app)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, name="e2e-centre", daemon=True)
    thread.start()
    yield Server(url=f"http://127.0.0.1:{http.server_port}", app=app)
    http.shutdown()
    http.server_close()
    thread.join(5)
    from qcflow.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def seed(app) -> None:
    """A centre user and six hospitals of two levels with the first half of last year sent (one month missing)."""
    import sqlalchemy as sa

    from qcflow.auth import services as auth
    from qcflow.auth.models import Department
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.region import protocol
    from qcflow.region.models import RegionHospital, RegionSubmission, RegionValue

    at = datetime.now(timezone.utc)
    year = at.year - 1
    with app.app_context():
        department = Department(code="QCC", name="省医疗质量控制中心", kind="functional", created_at=at)
        db.session.add(department)
        db.session.flush()
        auth.create_user("zhongxin", PASSWORD, ["centre"], department, actor=Actor.system("e2e"), now=at)
        names = ["郑州市第一人民医院", "洛阳市中心医院", "开封市人民医院", "新乡县人民医院", "登封市人民医院",
                 "巩义市人民医院"]
        for i, name in enumerate(names):
            hospital = RegionHospital(code=f"410{i:03d}", name=name, level="tertiary" if i < 3 else "secondary",
                                      ownership="public", region=["郑州", "洛阳", "开封"][i % 3],
                                      public_key=protocol.public_key_text(protocol.generate_key()),
                                      created_at=at, updated_at=at, updated_by="e2e")
            db.session.add(hospital)
            db.session.flush()
            for m in range(1, 7):
                if i == 5 and m == 6:
                    continue  # one month never sent: overdue
                month = date(year, m, 1)
                submission = RegionSubmission(hospital_id=hospital.id, kind="month", period=f"{month:%Y-%m}",
                                              revision=1, starts_on=month, ends_on=month, document="{}",
                                              digest="0" * 64, signature="x", signed_at=at, received_at=at)
                db.session.add(submission)
                db.session.flush()
                denominator = 30 + 10 * i + m
                numerator = denominator * (60 + 7 * i) // 100
                db.session.add_all([
                    RegionValue(submission_id=submission.id, hospital_id=hospital.id, code=RATE, month_on=month,
                                numerator=numerator, denominator=denominator, value=numerator * 100 / denominator),
                    RegionValue(submission_id=submission.id, hospital_id=hospital.id,
                                code="emergency_response_time_mean", month_on=month, value=10.0 + i)])
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(RegionValue)) > 0


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("kind", ["phone", "desktop"])
def test_a_centre_user_walks_completeness_comparison_and_profile(server, contexts, kind):
    year = datetime.now(timezone.utc).year - 1
    page = contexts(kind).new_page()
    login(page, "zhongxin", PASSWORD)
    page.goto(f"/centre/completeness?year={year}")
    main = page.inner_text("main")
    assert "各医院月度数据报送完整性" in main and "漏报" in main, main[:1000]
    assert check_no_horizontal_scroll(page)
    shot(page, f"{kind}-1-completeness")

    page.goto(f"/centre/indicators?from={year}-01&to={year}-06")
    assert "指标横向比较" in page.inner_text("main")
    with page.expect_navigation():
        page.click("a:has-text('急性ST段抬高型心肌梗死再灌注治疗率')")
    main = page.inner_text("main")
    assert "区域值" in main and "排名" in main and "三级医院" in main
    assert page.locator("svg.funnel").count() == 2 and page.locator("svg.trend").count() == 1
    assert check_no_horizontal_scroll(page)
    shot(page, f"{kind}-2-indicator")

    with page.expect_navigation():
        page.locator("#level-tertiary table a", has_text="郑州市第一人民医院").click()
    main = page.inner_text("main")
    assert "郑州市第一人民医院" in main and "同等级区域值" in main and "第 3 / 3 名" in main, main[:1500]
    assert check_no_horizontal_scroll(page)
    shot(page, f"{kind}-3-profile")
