"""Benchmark P13 (the HIS's booking decision call) runs at small scale and every answer equals the gate
computed from the raw reads; timings are not asserted."""
from tests.followup.test_bench import assert_rows, bench, bench_url  # noqa: F401 (bench_url is a fixture)


def test_bench_booking_check_scale_s(bench_url, tmp_path):  # noqa: F811
    stdout = bench(bench_url, tmp_path, "--scenario", "P13", "--quick")
    assert_rows(stdout, ("P13 booking_check_app", "P13 booking_check_http"))
