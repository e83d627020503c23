"""The /indicators pages: Chinese by default, charts without scripts or requests, drill-down links."""
import base64
import re

SVG = re.compile(r'src="data:image/svg\+xml;base64,([^"]+)"')


def test_page_renders_in_chinese_with_trend_charts(clients, reference_month):
    from qcflow.indicators import catalogue
    from qcflow.indicators.definitions import INDICATORS

    reported = [entry for entry in catalogue.entries() if entry.method == "reported"]
    response = clients("quality").get("/indicators?from=2026-03-01&to=2026-03-31")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "质量指标" in html and "每百出院人次主动报告不良事件例次" in html and "未达标" in html
    assert "Numerator" not in html
    from qcflow.indicators.definitions import INDICATORS

    charts = SVG.findall(html)
    # One trend chart per computed indicator; the reported ones have no value in the reference month nor the
    # year before: each is named once below the table instead of an empty row and chart.
    assert len(charts) == len(INDICATORS)
    quiet = html.split('id="reported-without-values"')[1].split("</p>")[0]
    assert all(entry.name in quiet for entry in reported) and "本期及此前12个月均无审核通过数值的上报指标" in quiet
    svg = base64.b64decode(charts[0]).decode()
    assert svg.startswith("<svg") and "<script" not in svg and "<?xml" not in svg
    assert set(re.findall(r"https?://[^\s\"'<>]+", svg)) <= {"http://www.w3.org/2000/svg",
                                                           "http://www.w3.org/1999/xlink"}
    # Numerator and denominator link to the drill-down of the same period.
    assert "/indicators/preop_mdt_rate_level4/cases?part=numerator&amp;from=2026-03-01&amp;to=2026-03-31" in html


def test_detail_and_cases_pages(clients, reference_month):
    client = clients("quality")
    detail = client.get("/indicators/preop_mdt_rate_level4?month=2026-03")
    assert detail.status_code == 200
    html = detail.get_data(as_text=True)
    assert "四级手术术前多学科讨论完成率" in html and "2026-03" in html and len(SVG.findall(html)) == 1
    cases = client.get("/indicators/preop_mdt_rate_level4/cases?from=2026-03-01&to=2026-03-31&part=denominator")
    assert cases.status_code == 200
    html = cases.get_data(as_text=True)
    assert len(re.findall(r'href="/operations/\d+"', html)) == 4 and "分母" in html
    tasks = client.get("/indicators/followup_rate_level4/cases?from=2026-03-01&to=2026-03-31&part=numerator&limit=1")
    html = tasks.get_data(as_text=True)
    assert len(re.findall(r'href="/followup/tasks/\d+"', html)) == 1 and "cursor=" in html


def test_page_scoping_and_errors(clients, reference_month, hospital):
    nurse = clients("nurse")
    page = nurse.get("/indicators?from=2026-03-01&to=2026-03-31")
    assert page.status_code == 200 and "普通外科" in page.get_data(as_text=True)
    assert nurse.get(f"/indicators?department={hospital['cardio'].id}").status_code == 404
    assert nurse.get(f"/indicators/preop_mdt_rate_level4/cases?department={hospital['cardio'].id}").status_code == 404
    bad = clients("quality").get("/indicators?from=2026-03-31&to=2026-03-01")
    assert bad.status_code == 422 and "开始日期晚于结束日期。" in bad.get_data(as_text=True)
    assert clients("quality").get("/indicators/unknown").status_code == 404
    assert clients("quality").get("/indicators/preop_mdt_rate_level4?month=2999-01").status_code == 422
    assert clients("doctor").get("/indicators").status_code == 403


def test_login_required(app, hospital):
    response = app.test_client().get("/indicators")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_drill_down_links_only_to_pages_the_reader_may_open(app, hospital, reference_month, clients):
    """A nurse sees the events behind a number but no link to the case pages she may not open."""
    url = "/indicators/ae_per_100_discharges/cases?part=numerator&from=2026-03-01&to=2026-03-31"
    nurse = clients("nurse").get(url).get_data(as_text=True)
    quality = clients("quality").get(url).get_data(as_text=True)
    assert 'href="/events/' in quality
    assert 'href="/events/' not in nurse and "<td>#" in nurse


def test_the_page_says_when_settled_months_were_last_counted(app, clients, reference_month):
    from datetime import datetime, timezone

    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.indicators import services

    assert "最近一次变动" not in clients("quality").get("/indicators?from=2026-03-01&to=2026-03-31").get_data(as_text=True)
    with app.app_context():
        services.refresh_rollups(actor=Actor.system("test"), now=datetime(2026, 4, 3, 18, 5, tzinfo=timezone.utc))
        db.session.commit()
    html = clients("quality").get("/indicators?from=2026-03-01&to=2026-03-31").get_data(as_text=True)
    assert "每晚根据原始记录重新统计（数值最近一次变动：2026-04-04 02:05）" in html
