"""`make run`'s demo data: the demo nurse has three calls due today, one per kind of pathway."""
from tests.conftest import login


def test_the_demo_nurse_sees_a_day_surgery_a_four_level_and_a_cancer_call_due_today(app, runner):
    result = runner.invoke(args=["qcflow", "demo-data"])
    assert result.exit_code == 0, result.output
    nurse = app.test_client()
    login(nurse, "nurse", "demo-nurse-2025")
    queue = nurse.get("/api/v1/followup/queue").json
    assert sorted((i["pathway"], i["timeliness"]) for i in queue["items"]) == [
        ("cancer_lung", "due"), ("day_surgery", "due"), ("four_level_surgery", "due")]
    assert queue["items"][0]["pathway"] == "day_surgery" and queue["items"][0]["is_urgent"]
    assert "陈建华" in nurse.get("/followup/queue").get_data(as_text=True)
