"""The queue's and the plan list's pages: a cursor only when a row follows the page."""
from tests.followup.test_tasks import calls  # noqa: F401 (fixture)


def test_the_last_full_queue_page_has_no_cursor_and_one_more_call_gets_a_page_of_its_own(client, tokens, calls):
    whole = client.get("/api/v1/followup/queue?limit=3", headers=tokens("nurse")).json
    assert [i["id"] for i in whole["items"]] == [calls["urgent"], calls["overdue"], calls["due"]]
    assert whole["next_cursor"] is None
    first = client.get("/api/v1/followup/queue?limit=2", headers=tokens("nurse")).json
    rest = client.get(f"/api/v1/followup/queue?limit=2&cursor={first['next_cursor']}", headers=tokens("nurse")).json
    assert [i["id"] for i in rest["items"]] == [calls["due"]] and rest["next_cursor"] is None


def test_the_queue_page_and_its_patients_leave_out_the_row_read_ahead(ctx, actor_of, calls, frozen):
    from qcflow.followup import queries

    tasks, patients, after = queries.queue(actor_of("nurse"), now=frozen, limit=1)
    assert [t.id for t in tasks] == [calls["urgent"]] and after is not None
    assert set(patients) == {tasks[0].patient_id}


def test_the_last_full_plan_page_has_no_cursor(ctx, actor_of, calls):
    from qcflow.followup import queries

    plans = calls["plans"]
    newest_first = sorted(plans.values(), reverse=True)
    whole, after = queries.plans(actor_of("nurse"), limit=3)
    assert [p.id for p in whole] == newest_first and after is None
    first, after = queries.plans(actor_of("nurse"), limit=2)
    rest, last = queries.plans(actor_of("nurse"), cursor=after, limit=2)
    assert [p.id for p in first + rest] == newest_first and last is None
