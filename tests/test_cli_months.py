"""The command line reads a month as the pages and API do: YYYY-MM, refused otherwise with exit code 2."""
import pytest


@pytest.mark.parametrize("month", ["2026-13", "26-01", "0000-01", "January"])
def test_freeze_refuses_a_month_not_written_yyyy_mm(runner, month):
    result = runner.invoke(args=["qcflow", "indicators", "freeze", "--month", month])
    assert result.exit_code == 2
    assert f"--month {month!r} is not a month as YYYY-MM, e.g. 2026-01" in result.output


def test_freeze_reads_a_finished_month(runner):
    result = runner.invoke(args=["qcflow", "indicators", "freeze", "--month", "2025-11"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("2025-11: snapshot rows added")
