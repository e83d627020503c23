"""`make run`'s demo data: the demo nurse's queue holds an overdue 24 h day-surgery call and three
calls due today, one per kind of pathway; the year's other calls are done."""
from tests.conftest import login


def test_the_demo_nurse_sees_an_overdue_call_then_a_day_surgery_a_four_level_and_a_cancer_call(app, runner):
    result = runner.invoke(args=["qcflow", "demo-data"])
    assert result.exit_code == 0, result.output
    nurse = app.test_client()
    login(nurse, "nurse", "demo-nurse-2025")
    queue = nurse.get("/api/v1/followup/queue").json
    assert sorted((i["pathway"], i["timeliness"]) for i in queue["items"]) == [
        ("cancer_lung", "due"), ("day_surgery", "due"), ("day_surgery", "overdue"), ("four_level_surgery", "due")]
    assert [(i["pathway"], i["timeliness"]) for i in queue["items"][:2]] == [
        ("day_surgery", "overdue"), ("day_surgery", "due")]
    assert all(i["is_urgent"] for i in queue["items"][:2])
    page = nurse.get("/followup/queue").get_data(as_text=True)
    assert "吴丽" in page and "陈建华" in page
