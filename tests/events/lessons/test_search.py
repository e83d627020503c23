"""Chinese full-text search of the library: the same SQL on SQLite and PostgreSQL (the suite runs on both)."""
import pytest

from qcflow.events.lessons.search import query_terms, terms_of


def test_terms_are_characters_pairs_and_latin_words():
    assert terms_of("双人核对 ICU") == {"双", "人", "核", "对", "双人", "人核", "核对", "icu"}
    assert terms_of("跌倒，坠床") == {"跌", "倒", "跌倒", "坠", "床", "坠床"}  # no pair across the comma
    assert terms_of("ＣＴ检查３号") == {"ct", "检", "查", "检查", "3", "号"}  # full width counts as ASCII


def test_a_query_asks_for_the_pairs_of_each_run_and_the_single_characters_alone():
    assert query_terms("双人核对") == ["双人", "人核", "核对"]
    assert query_terms("床") == ["床"]
    assert query_terms("跌倒、PICC") == ["跌倒", "picc"]
    assert query_terms("，。！?") == []


def search(q, **filters):
    from qcflow.events.lessons.queries import library

    return [lesson.title for lesson in library(q=q, **filters)[0]]


@pytest.fixture
def library(write_lesson):
    write_lesson("published", title="胰岛素剂量错误", what_happened="夜班配药时胰岛素多抽，双人核对时发现。")
    write_lesson("published", title="术后跌倒", what_happened="患者术后首次下床跌倒。", why="未呼叫护士。",
                 what_changed="首次下床由护士陪同；PICC 维护培训。")
    write_lesson("published", title="CT 检查预约延误", what_happened="增强ＣＴ检查预约错过３号窗口。",
                 why="预约流程不清。", what_changed="明确预约流程。")
    write_lesson("draft", title="跌倒草稿", what_happened="跌倒。")


@pytest.mark.parametrize("q, found", [
    ("跌倒", ["术后跌倒"]),  # a two-character word
    ("倒", ["术后跌倒"]),  # a single character
    ("首次下床，跌倒", ["术后跌倒"]),  # a phrase across punctuation: every part must occur
    ("picc", ["术后跌倒"]),  # latin, case-insensitive
    ("Ct", ["CT 检查预约延误"]),  # full-width letters in the text
    ("3号", ["CT 检查预约延误"]),  # full-width digits in the text
    ("胰岛素 跌倒", []),  # AND: no lesson holds both
    ("骨折", []),  # no match
    ("核对", ["胰岛素剂量错误"]),
])
def test_search_finds_published_lessons_holding_every_word(library, q, found):
    assert search(q) == found


def test_a_query_of_punctuation_only_lists_the_whole_library_newest_first(library):
    assert search("？！。") == ["CT 检查预约延误", "术后跌倒", "胰岛素剂量错误"]


def test_a_query_too_long_is_refused_with_a_message(library):
    from qcflow.core.errors import Unprocessable

    with pytest.raises(Unprocessable) as refused:
        search("跌倒" * 60)
    assert "q" in refused.value.errors


def test_saving_a_draft_replaces_its_terms(write_lesson, actor_of, now):
    from qcflow.events.lessons import services
    from qcflow.events.lessons.models import LessonTerm
    from qcflow.extensions import db
    import sqlalchemy as sa

    lesson = write_lesson("draft")
    services.update(lesson, {"title": "标本错误"}, actor=actor_of("quality"), now=now, expected_version=lesson.version)
    terms = set(db.session.scalars(sa.select(LessonTerm.term).where(LessonTerm.lesson_id == lesson.id)))
    assert {"标本", "本错", "错误", "夜班"} <= terms  # the new title and the unchanged texts
    assert not {"药未", "未双"} & terms  # pairs only the old title held are gone


def test_filters_and_keyset_pages(write_lesson, hospital):
    from qcflow.events.lessons.queries import library

    for n in range(5):
        write_lesson("published", title=f"第{n}例")
    first, cursor = library(limit=2)
    second, cursor2 = library(limit=2, cursor=cursor)
    third, last = library(limit=2, cursor=cursor2)
    titles = [lesson.title for lesson in first + second + third]
    assert len(set(titles)) == 5 and last is None
    assert library(department_id=hospital["cardio"].id)[0] == []
    assert len(library(category="medication")[0]) == 5 and library(category="fall")[0] == []


def test_a_lesson_is_found_by_its_category_in_either_language_whatever_words_its_text_uses(write_lesson, hospital):
    write_lesson("published", title="卫生间滑倒", what_happened="患者夜间如厕时摔倒。", why="地面湿滑。",
                 what_changed="卫生间加防滑垫。", category_code="fall")
    write_lesson("published", title="胰岛素剂量错误", what_happened="配药时多抽。", why="未双人核对。",
                 what_changed="双人核对。")

    assert search("跌倒") == ["卫生间滑倒"]  # the category's name (跌倒/坠床), not a word of the text
    assert search("Fall") == ["卫生间滑倒"]
    assert search("medication") == ["胰岛素剂量错误"]
