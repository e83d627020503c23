"""The trigger evaluator's benchmark (P14) runs at small size and its correctness checks hold: the evaluator and
the raw statements each record exactly the firings the new facts must produce, at both stored sizes, and the
job's committed run leaves that set with an empty queue. Timings are not asserted (machines vary)."""
import re

from tests.followup.test_bench import assert_rows, bench, bench_url  # noqa: F401 (fixture)


def test_bench_trigger_evaluator_quick(bench_url, tmp_path):  # noqa: F811
    stdout = bench(bench_url, tmp_path, "--scenario", "P14", "--quick")
    assert_rows(stdout, ("P14 evaluate_stored_1x", "P14 evaluate_stored_10x", "P14 o_new_scaling"))
    assert re.search(r"^P14 evaluate_stored_10x: correctness \(firings == expected set \(400\), each once, "
                     r"queue empty\) PASS", stdout, re.M), stdout
