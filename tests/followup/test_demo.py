"""`make run`'s demo data: the demo nurse's queue holds a call whose patient answered online with alarming answers
first, then an overdue 24 h day-surgery call and the calls due today, one per kind of pathway; three calls were
offered online (answered, alarming, unanswered); the year's other calls are done."""
from tests.conftest import login


def test_the_demo_nurse_sees_an_overdue_call_then_a_day_surgery_a_four_level_and_a_cancer_call(app, runner):
    result = runner.invoke(args=["qcflow", "demo-data"])
    assert result.exit_code == 0, result.output
    nurse = app.test_client()
    login(nurse, "nurse", "demo-nurse-2025")
    queue = nurse.get("/api/v1/followup/queue").json
    assert sorted((i["pathway"], i["timeliness"]) for i in queue["items"]) == [
        ("cancer_colorectal", "due"), ("cancer_lung", "due"), ("day_surgery", "due"), ("day_surgery", "overdue"),
        ("four_level_surgery", "due")]
    assert [(i["pathway"], i["timeliness"]) for i in queue["items"][:3]] == [
        ("cancer_colorectal", "due"), ("day_surgery", "overdue"), ("day_surgery", "due")]
    assert queue["items"][0]["alarm"] and all(i["is_urgent"] for i in queue["items"][1:3])
    page = nurse.get("/followup/queue").get_data(as_text=True)
    assert "吴丽" in page and "陈建华" in page


def test_three_calls_were_offered_online_answered_alarming_and_unanswered(app, runner):
    result = runner.invoke(args=["qcflow", "demo-data"])
    assert result.exit_code == 0, result.output
    nurse = app.test_client()
    login(nurse, "nurse", "demo-nurse-2025")
    items = nurse.get("/api/v1/followup/queue").json["items"]
    offered = {i["patient"]["name"]: i["invitation"] for i in items if i["invitation"]}
    assert set(offered) == {"林秀英", "郑桂兰", "黄国强"}
    assert offered["林秀英"]["state"] == "answered" and offered["林秀英"]["alarms"] == []
    assert offered["郑桂兰"]["state"] == "answered" and offered["郑桂兰"]["alarms"] == ["complication", "worsening"]
    unanswered = offered["黄国强"]
    assert unanswered["state"] == "delivered" and unanswered["reminders_sent"] == 1 and unanswered["answered_at"] is None
    task_id = next(i["id"] for i in items if i["patient"]["name"] == "黄国强")
    log = nurse.get(f"/api/v1/followup/tasks/{task_id}").json["invitation"]["messages"]
    assert [(m["kind"], m["status"]) for m in log] == [("invitation", "sent"), ("report", "delivered"),
                                                       ("reminder", "sent")]
    page = nurse.get("/followup/queue").get_data(as_text=True)
    assert "已在线答复，待确认" in page and "警示答复" in page and "已发送邀请" in page


def test_demo_data_prints_the_unanswered_patients_link_and_it_opens_their_page(app, runner):
    import re

    result = runner.invoke(args=["qcflow", "demo-data"])
    assert result.exit_code == 0, result.output
    link = re.search(r"黄国强.*year of birth 1955\): (/f/[A-Za-z0-9_-]{43})$", result.output, re.M).group(1)
    patient = app.test_client()
    page = patient.get(link)
    assert page.status_code == 200 and 'name="factor"' in page.get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    confirmed = patient.post(link, data={"csrf_token": token, "action": "factor", "factor": "1955"})
    assert confirmed.status_code == 200 and 'name="satisfaction"' in confirmed.get_data(as_text=True)
