"""The plans' indicator annexes and target sets as data (qcflow/indicators/data/*.csv), checked against the plans.

The seed files are the plans' text as extracted from their PDFs (tests/indicators/seeds, copied unchanged so
that the line numbers the CSV files cite are the ones auditors read). No database and no app: the module
overrides the package's autouse fixture that re-seeds targets.
"""
from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "qcflow" / "indicators" / "data"
SEEDS = Path(__file__).resolve().parent / "seeds"
SEED_FILES = {"guizhou": "000_c26576dbd0f0512e.txt", "shaoxing": "001_984985ba56624596.txt",
              "yubei": "002_fc60876be4560e9e.txt", "henan": "003_56780ec4d3926320.txt"}
#: Each annex: its first and last line in the seed file and the number of rows the plan lists.
ANNEXES = {"henan": (1417, 1595, 40), "yubei": (584, 798, 37), "shaoxing": (843, 1052, 22)}
#: Guizhou's annexes are missing from its file: its rows are the body's (before the annex list at [000:120]).
GUIZHOU_BODY_END = 119
#: How many lines after its `line` an annex row's wording may end (the PDF text splits a cell over lines).
WINDOW = 12

CATALOGUE_COLUMNS = ["code", "name", "name_en", "unit", "direction", "method", "responsible", "definition",
                     "definition_en", "na_reason"]
ANNEX_COLUMNS = ["plan", "seq", "dimension", "dimension_en", "wording", "wording_en", "line", "codes",
                 "target_text", "responsible"]
TARGET_COLUMNS = ["plan", "code", "level", "year", "comparison", "value", "source"]
UNITS = {"percent", "permille", "per100", "count", "minutes", "hours", "days", "ratio", "status"}
DIRECTIONS = {"higher", "lower", "rising", "falling", "none"}
METHODS = {"computed", "reported", "not_applicable"}
COMPARISONS = {"gt", "ge", "le", "lt"}
LEVELS = {"tertiary", "secondary", "both"}
PLANS = {"henan", "yubei", "guizhou", "shaoxing"}
KEY_CANCERS = ("lung", "gastric", "liver", "breast", "colorectal")
#: The indicators qcflow computes from its own data (qcflow/indicators/definitions.py and those being added).
COMPUTED = {
    "ae_per_100_discharges", "followup_rate_level4", "followup_rate_cancer",
    *(f"followup_rate_cancer_{t}" for t in KEY_CANCERS), "day_surgery_24h_followup_rate", "preop_mdt_rate_level4",
    "periop_death_discussion_rate", "periop_death_discussion_7d_rate", "unplanned_reoperation_rate",
    "day_surgery_share", "ae_closure_on_time_rate", "unplanned_reoperation_48h_rate",
    "unplanned_reoperation_31d_rate", "periop_death_discussion_5wd_rate", "periop_mortality_rate",
    "cancer_5y_survival", *(f"cancer_5y_survival_{t}" for t in KEY_CANCERS), "mdt_clinic_count",
}
#: Words of the direction and responsible columns that the PDF text puts inside a split wording.
COLUMN_WORDS = ("逐步升高", "逐步降低", "/")


@pytest.fixture(autouse=True)
def _seeded_targets():
    """Nothing to re-seed: these tests read files only."""


def read_csv(name: str, columns: list[str]) -> list[dict]:
    with open(DATA / name, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == columns, f"{name}: header {reader.fieldnames}, expected {columns}"
        rows = list(reader)
    for number, row in enumerate(rows, 2):
        assert None not in row and None not in row.values(), f"{name} line {number}: wrong number of fields {row}"
    return rows


CATALOGUE = read_csv("catalogue.csv", CATALOGUE_COLUMNS)
ANNEX_ROWS = read_csv("annexes.csv", ANNEX_COLUMNS)
TARGETS = read_csv("targets.csv", TARGET_COLUMNS)
BY_CODE = {row["code"]: row for row in CATALOGUE}


def seed_lines(plan: str) -> list[str]:
    """The seed file's lines; index 0 is line 1, as the plans are cited."""
    return (SEEDS / SEED_FILES[plan]).read_text(encoding="utf-8").split("\n")


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def rows_of(plan: str) -> list[dict]:
    return [row for row in ANNEX_ROWS if row["plan"] == plan]


def label(row: dict) -> str:
    return f"{row['plan']} row {row['seq']} ({row['wording']})"


def annex_row_numbers(plan: str) -> list[int]:
    """The row numbers (序号) that begin a line of the plan's annex."""
    first, last, _count = ANNEXES[plan]
    lines = seed_lines(plan)[first - 1:last]
    return [int(match.group(1)) for line in lines if (match := re.match(r"\s*(\d+)(?=\s|$)", line))]


@pytest.mark.parametrize("plan", sorted(ANNEXES))
def test_each_annex_has_as_many_rows_as_its_last_row_number(plan):
    expected = ANNEXES[plan][2]
    numbers = annex_row_numbers(plan)
    assert max(numbers) == expected, f"{plan}: the seed's annex ends at row {max(numbers)}, expected {expected}"
    assert len(rows_of(plan)) == expected, f"{plan}: {len(rows_of(plan))} rows in annexes.csv, the annex has {expected}"


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_rows_are_numbered_from_one_without_gaps(plan):
    seqs = [int(row["seq"]) for row in rows_of(plan)]
    assert seqs, f"{plan}: no rows"
    assert seqs == list(range(1, len(seqs) + 1)), f"{plan}: seq {seqs} is not 1..{len(seqs)} in order"


@pytest.mark.parametrize("plan", sorted(ANNEXES))
def test_each_annex_row_starts_on_its_line_with_its_number(plan):
    first, last, _count = ANNEXES[plan]
    lines = seed_lines(plan)
    previous = 0
    for row in rows_of(plan):
        line = int(row["line"])
        assert first <= line <= last, f"{label(row)}: line {line} is outside the annex [{first}-{last}]"
        assert line > previous, f"{label(row)}: line {line} is not after the previous row's line {previous}"
        previous = line
        assert re.search(rf"(?<![\d.]){row['seq']}(?![\d.])", lines[line - 1]), (
            f"{label(row)}: line {line} does not hold the row number {row['seq']}: {lines[line - 1]!r}")


def near(lines: list[str], row: dict) -> str:
    """The seed text from the row's line over the next WINDOW lines, without whitespace, with the row's own
    target and responsible columns (which the PDF text may put inside a split wording) taken out."""
    line = int(row["line"])
    text = squeeze("".join(lines[line - 1:line + WINDOW]))
    for column in (row["target_text"], row["responsible"], *COLUMN_WORDS):
        if column:
            text = text.replace(squeeze(column), "")
    return text


@pytest.mark.parametrize("plan", sorted(ANNEXES))
def test_each_annex_wording_is_in_the_seed_at_its_line(plan):
    lines = seed_lines(plan)
    for row in rows_of(plan):
        assert row["wording"] == squeeze(row["wording"]) and row["wording"], f"{label(row)}: wording has spaces"
        assert squeeze(row["wording"]) in near(lines, row), (
            f"{label(row)}: wording not found within {WINDOW} lines of line {row['line']}")


def test_guizhou_rows_are_the_body_s_words_in_its_order():
    lines, previous = seed_lines("guizhou"), 0
    for row in rows_of("guizhou"):
        line = int(row["line"])
        assert previous <= line <= GUIZHOU_BODY_END, f"{label(row)}: line {line} out of the body's order"
        previous = line
        assert squeeze(row["wording"]) in squeeze(lines[line - 1]), f"{label(row)}: wording not on line {line}"


def test_annex_target_and_dimension_columns_are_filled_as_the_plans_print_them():
    for row in ANNEX_ROWS:
        assert row["dimension"] and row["dimension_en"] and row["wording_en"], f"{label(row)}: empty column"
        if row["plan"] == "shaoxing":
            assert row["target_text"] == "", f"{label(row)}: Shaoxing's target columns are empty"
        else:
            assert row["target_text"], f"{label(row)}: no target or direction"
    for row in rows_of("henan"):
        assert row["target_text"] in {"/", "逐步升高", "逐步降低"}, f"{label(row)}: Henan states directions only"


def test_every_code_used_exists_in_the_catalogue():
    for row in ANNEX_ROWS:
        codes = row["codes"].split(" ")
        assert codes and all(codes), f"{label(row)}: codes {row['codes']!r}"
        assert len(set(codes)) == len(codes), f"{label(row)}: a code twice"
        for code in codes:
            assert code in BY_CODE, f"{label(row)}: code {code} is not in catalogue.csv"
    for row in TARGETS:
        assert row["code"] in BY_CODE, f"target {row}: code {row['code']} is not in catalogue.csv"


def test_catalogue_codes_are_unique_stable_identifiers():
    counts = Counter(row["code"] for row in CATALOGUE)
    assert not [code for code, n in counts.items() if n > 1], f"codes twice: {counts.most_common(3)}"
    for row in CATALOGUE:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", row["code"]), f"catalogue {row['code']}: not snake_case"


def test_catalogue_columns_are_from_the_allowed_lists():
    for row in CATALOGUE:
        code = row["code"]
        assert row["unit"] in UNITS, f"catalogue {code}: unit {row['unit']!r}"
        assert row["direction"] in DIRECTIONS, f"catalogue {code}: direction {row['direction']!r}"
        assert row["method"] in METHODS, f"catalogue {code}: method {row['method']!r}"
        assert (row["unit"] == "status") == (row["direction"] == "none"), (
            f"catalogue {code}: a status item (and only it) has no direction")
        for column in ("name", "name_en", "responsible", "definition", "definition_en"):
            assert row[column].strip(), f"catalogue {code}: {column} is empty"
        assert re.search(r"[\u4e00-\u9fff]", row["name"]) and re.search(r"[\u4e00-\u9fff]", row["definition"]), (
            f"catalogue {code}: name and definition are Chinese")
        assert not re.search(r"[\u4e00-\u9fff]", row["name_en"] + row["definition_en"]), (
            f"catalogue {code}: name_en and definition_en are English")


def test_not_applicable_rows_and_only_they_have_a_reason():
    for row in CATALOGUE:
        if row["method"] == "not_applicable":
            assert re.search(r"[\u4e00-\u9fff]", row["na_reason"]), f"catalogue {row['code']}: no reason in Chinese"
        else:
            assert row["na_reason"] == "", f"catalogue {row['code']}: a reason for a {row['method']} indicator"


def test_computed_rows_are_exactly_the_computed_indicators():
    computed = {row["code"] for row in CATALOGUE if row["method"] == "computed"}
    assert computed - COMPUTED == set(), f"marked computed but qcflow does not compute: {sorted(computed - COMPUTED)}"
    assert COMPUTED - computed == set(), f"computed but not marked so: {sorted(COMPUTED - computed)}"


def test_every_catalogue_row_is_in_an_annex_or_computed():
    used = {code for row in ANNEX_ROWS for code in row["codes"].split(" ")}
    unused = [row["code"] for row in CATALOGUE if row["code"] not in used | COMPUTED]
    assert unused == [], f"catalogue rows no plan lists and qcflow does not compute: {unused}"


def test_computed_rows_agree_with_the_definitions():
    """The catalogue names a computed indicator as its definition does (one name, unit and direction)."""
    from qcflow.core.db import import_all_models

    import_all_models()
    from qcflow.indicators.definitions import BY_CODE as DEFINED

    for code, indicator in DEFINED.items():
        assert code in BY_CODE, f"definitions.py {code}: not in catalogue.csv"
        row = BY_CODE[code]
        assert row["method"] == "computed", f"catalogue {code}: computed in definitions.py"
        assert (row["name"], row["name_en"], row["unit"], row["direction"]) == (
            indicator.name, indicator.name_en, indicator.unit, indicator.direction), f"catalogue {code} differs"


def cited_text(row: dict) -> str:
    """The seed lines a target's source cites, e.g. "Yubei [002:426-428, 720]", without whitespace."""
    match = re.search(r"\[(\d{3}):([\d\s,\-]+)\]", row["source"])
    assert match, f"target {row}: source cites no lines"
    plan = next(plan for plan, name in SEED_FILES.items() if name.startswith(match.group(1)))
    assert plan == row["plan"], f"target {row}: cites another plan's file"
    lines, text = seed_lines(plan), []
    for part in match.group(2).split(","):
        start, _, end = part.strip().partition("-")
        text.extend(lines[int(start) - 1:int(end or start)])
    return squeeze("".join(text))


def test_each_target_states_the_number_its_cited_lines_state():
    for row in TARGETS:
        assert row["plan"] in PLANS and row["level"] in LEVELS, f"target {row}: plan or level"
        assert row["comparison"] in COMPARISONS, f"target {row}: comparison {row['comparison']!r}"
        assert 2023 <= int(row["year"]) <= 2025, f"target {row}: year outside the plans' 2023-2025"
        value = float(row["value"])
        if BY_CODE[row["code"]]["unit"] == "percent":
            assert 0 < value <= 100, f"target {row}: a percent as 90 for 90 %"
        assert BY_CODE[row["code"]]["method"] != "not_applicable", f"target {row}: for an item not the hospital's"
        assert row["value"] in cited_text(row), f"target {row}: {row['value']} is not in the lines it cites"


def test_one_target_per_plan_indicator_level_and_year():
    seen = Counter((row["plan"], row["code"], row["year"], row["level"]) for row in TARGETS)
    assert [key for key, n in seen.items() if n > 1] == [], "a target twice"
    for plan, code, year, level in seen:
        if level == "both":
            assert not {(plan, code, year, "tertiary"), (plan, code, year, "secondary")} & set(seen), (
                f"target {plan} {code} {year}: 'both' and a single level")


def test_shaoxing_targets_come_from_its_body_only():
    body_end = 136  # Annex 1 starts at [001:137]
    for row in TARGETS:
        if row["plan"] == "shaoxing":
            lines = [int(n) for n in re.findall(r"\d+", row["source"].split(":", 1)[1])]
            assert max(lines) <= body_end, f"target {row}: Shaoxing's annex columns are empty"


def test_every_number_a_plan_states_has_a_target():
    for row in ANNEX_ROWS:
        # "不少于每年1次" is how often to call, not a target for the follow-up rate
        if re.search(r"\d", row["target_text"]) and "每年" not in row["target_text"]:
            codes = row["codes"].split(" ")
            assert any(t["plan"] == row["plan"] and t["code"] in codes for t in TARGETS), (
                f"{label(row)}: states {row['target_text']} but has no target row")


def test_a_direction_is_higher_or_lower_exactly_where_a_plan_sets_a_number():
    """Computed indicators keep their definition's direction; the others say rising or falling when no plan
    gives a number."""
    targeted = {row["code"] for row in TARGETS}
    for row in CATALOGUE:
        if row["method"] != "computed" and row["unit"] != "status":
            numeric = row["direction"] in {"higher", "lower"}
            assert numeric == (row["code"] in targeted), (
                f"catalogue {row['code']}: direction {row['direction']} but "
                f"{'a' if row['code'] in targeted else 'no'} target")


def test_the_catalogue_names_the_departments_shaoxing_names():
    for row in rows_of("shaoxing"):
        for code in row["codes"].split(" "):
            assert BY_CODE[code]["responsible"] == row["responsible"], (
                f"{label(row)}: Shaoxing names {row['responsible']}, catalogue {code} {BY_CODE[code]['responsible']}")


def test_the_documentation_lists_every_catalogue_row():
    text = (ROOT / "docs" / "indicators.md").read_text(encoding="utf-8")
    heading = "## The catalogue (every indicator of the plans)"
    assert heading in text, "docs/indicators.md has no catalogue section"
    section = text.split(heading, 1)[1]
    for row in CATALOGUE:
        line = (f"| `{row['code']}` | {row['name']} | {row['unit']} | {row['method']} | {row['responsible']} | "
                f"{row['definition_en']} |")
        assert line in section.splitlines(), f"docs: the table row of catalogue {row['code']} is missing or differs"
