"""The PII scrubber: concrete narratives, and injected PII that must never survive."""
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qcflow.events.scrub import scrub

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def with_check(first17: str) -> str:
    return first17 + "10X98765432"[sum(int(c) * w for c, w in zip(first17, WEIGHTS)) % 11]


VALID_ID = "11010519491231002X"
VALID_ID_DIGIT = "440304199001011233"
STAFF = ["张三", "李四", "欧阳娜娜", "Zhang Wei", "John Smith"]


def test_check_digits_of_the_examples():
    assert with_check(VALID_ID[:17]) == VALID_ID
    assert with_check(VALID_ID_DIGIT[:17]) == VALID_ID_DIGIT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"患者身份证{VALID_ID_DIGIT}，入院时未核对腕带。",
            "患者身份证[身份证号]，入院时未核对腕带。",
        ),
        (f"证件 {VALID_ID.lower()} 已复印", "证件 [身份证号] 已复印"),
        ("证件号 440304199001011234 与病历不符", "证件号 440304199001011234 与病历不符"),
        ("条码4403041990010112331已作废", "条码4403041990010112331已作废"),
        ("家属电话13812345678，未接通", "家属电话[手机号]，未接通"),
        ("电话 138-1234-5678 / 139 8765 4321", "电话 [手机号] / [手机号]"),
        ("联系 +86 13812345678 或 86-15900001111", "联系 [手机号] 或 [手机号]"),
        ("全角１３８１２３４５６７８", "全角[手机号]"),
        ("订单号213812345678与12345678901", "订单号213812345678与12345678901"),
        ("住院号：ZY20250001，病案号 B-778，门诊号码:M2025", "住院号：[编号]，病案号 [编号]，门诊号码:[编号]"),
        ("病历号12345；ID号：88a；MRN: 7788；mrn#42", "病历号[编号]；ID号：[编号]；MRN: [编号]；mrn#[编号]"),
        ("住院号未填写，MRN is missing", "住院号未填写，MRN is missing"),
        ("身份证号：110105194912310021（录入错误）", "身份证号：[身份证号]（录入错误）"),
        ("3床患者跌倒，12床、加3床、ICU12床、床号12 均已告知", "[床号]患者跌倒，[床号]、[床号]、ICU[床号]、床号[编号] 均已告知"),
        ("病床不足，临床科室协调", "病床不足，临床科室协调"),
    ],
)
def test_numbers_and_identifiers(text, expected):
    assert scrub(text) == expected


def test_narrative_with_everything():
    text = (
        "2025年10月3日夜班，护士李四发现12床患者张三（住院号：ZY20250001，"
        f"身份证号{VALID_ID}）在卫生间跌倒，立即通知值班医生Zhang Wei，"
        "并电话联系家属（138 1234 5678）。欧阳娜娜护士长次日查看现场。"
    )

    assert scrub(text, STAFF) == (
        "2025年10月3日夜班，护士[姓名]发现[床号]患者[姓名]（住院号：[编号]，"
        "身份证号[身份证号]）在卫生间跌倒，立即通知值班医生[姓名]，"
        "并电话联系家属（[手机号]）。[姓名]护士长次日查看现场。"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("张三丰与张三交班", "[姓名]与[姓名]交班"),  # longest first
        ("由张　三签字", "由[姓名]签字"),  # padded two-character name
        ("zhang wei and ZHANG  WEI", "[姓名] and [姓名]"),
        ("Zhangwei, JohnSmithson", "Zhangwei, JohnSmithson"),  # whole words only
        ("王医生与王五", "王医生与王五"),  # single characters are ignored
    ],
)
def test_names(text, expected):
    assert scrub(text, ["张三丰", "张三", "Zhang Wei", "John Smith", "王", "", "  ", "W"]) == expected


def test_names_may_be_any_iterable():
    assert scrub("李四值班", (name for name in ["李四"])) == "[姓名]值班"
    assert scrub("李四值班", None) == "李四值班"


@pytest.mark.parametrize("text", ["", None])
def test_empty(text):
    assert scrub(text, STAFF) == ""


def test_placeholders_are_not_scrubbed_again():
    once = scrub("患者姓名：张三，床号：5", ["张三", "姓名"])

    assert once == "患者[姓名]：[姓名]，床号：[编号]"
    assert scrub(once, ["张三", "姓名"]) == once


def test_glued_numbers_are_all_removed():
    once = scrub(f"{VALID_ID}13812345678")

    assert once == "[身份证号][手机号]"
    assert scrub(once) == once


def test_huge_text():
    text = ("护士发现患者跌倒，" * 20_000 + "住院号" + " " * 50_000) * 3 + "。13812345678"

    out = scrub(text, STAFF)

    assert out.endswith("[手机号]")
    assert out.count("护士发现患者跌倒") == 60_000


NARRATIVE = "患者术后跌倒护士发现立即报告医生处理家属病房夜班用药错误，。；、（）！？ "
NAME_CHARS = "赵钱孙周吴郑冯陈褚卫蒋沈韩杨朱秦尤许何吕施伟芳娜敏静丽强磊军洋"
SEPARATORS = ["，", "。", " ", "；", "（", "）", "、", "\n"]
LABELS = ["住院号", "病案号", "门诊号", "床号", "病历号", "ID号", "MRN", "mrn", "住院号码"]

digits = st.text("0123456789", min_size=1)
id_numbers = st.text("0123456789", min_size=17, max_size=17).map(with_check)
mobiles = st.builds(
    lambda prefix, second, rest, sep: f"{prefix}1{second}{rest[0]}{sep}{rest[1:5]}{sep}{rest[5:]}",
    st.sampled_from(["", "+86 ", "86", "+86-", "86 "]),
    st.sampled_from("3456789"),
    st.text("0123456789", min_size=9, max_size=9),
    st.sampled_from(["", " ", "-"]),
)
mrns = st.builds(
    lambda label, sep, letters, number: f"{label}{sep}{letters}{number}",
    st.sampled_from(LABELS),
    st.sampled_from(["", "：", ":", " ", "： ", "#"]),
    st.text("ABCZY", max_size=3),
    digits,
)
beds = st.builds(
    lambda plus, number: f"{plus}{number}床",
    st.sampled_from(["", "加"]),
    st.text("0123456789", min_size=1, max_size=3),
)
chinese_names = st.text(NAME_CHARS, min_size=2, max_size=4)
# A name that is also the label MRN stays when a number follows it: the label wins.
latin_names = st.from_regex(r"[A-Z][a-z]{1,6}( [A-Z][a-z]{1,6})?", fullmatch=True).filter(
    lambda name: "mrn" not in name.casefold()
)
name_lists = st.lists(st.one_of(chinese_names, latin_names), min_size=1, max_size=5, unique=True)


@st.composite
def narratives_with_pii(draw):
    names = draw(name_lists)
    numbers = st.one_of(id_numbers, mobiles, mrns, beds)
    narrative = st.text(NARRATIVE, max_size=12)
    pieces = draw(st.lists(st.one_of(numbers, st.sampled_from(names), narrative), max_size=12))
    count = len(pieces) + 1
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=count, max_size=count))
    text = seps[0] + "".join(piece + sep for piece, sep in zip(pieces, seps[1:]))
    return text, names


@settings(max_examples=200)
@given(narratives_with_pii())
def test_injected_pii_never_survives(case):
    text, names = case

    out = scrub(text, names)

    assert not re.search(r"[0-9]", out), out
    for name in names:
        assert name not in out
    assert scrub(out, names) == out


@settings(max_examples=200)
@given(st.text(NARRATIVE + "abcxyzABCXYZ住院号病案床MRNID:：#-+[]姓名编", max_size=200), name_lists)
def test_text_without_pii_is_unchanged(text, names):
    compact = "".join(text.split()).casefold()
    absent = [name for name in names if "".join(name.split()).casefold() not in compact]

    assert scrub(text, absent) == text


TOKENS = st.one_of(
    st.sampled_from(
        ["住院号", "身份证号", "床号", "床", "加", "MRN", "ID号", "：", ":", "#", " ", "-", "+86", "86",
         "X", "x", "[", "]", "[姓名]", "[编号]", "姓名", "张三", "Li", "li", "１", "\u3000"]
    ),
    digits,
    id_numbers,
    mobiles,
    st.text(max_size=3),
)


@settings(max_examples=200)
@given(
    st.lists(TOKENS, max_size=30).map("".join),
    st.lists(st.sampled_from(["张三", "Li", "姓名", "床号", "李 四", "X1"])),
)
def test_any_text_scrubs_idempotently(text, names):
    once = scrub(text, names)

    assert scrub(once, names) == once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("陈\u200b建华来过，陈-建华、陈\u0301建华、陈·建华也来过", "[姓名]来过，[姓名]、[姓名]、[姓名]也来过"),
        ("电话138\u00a00013\u00a08000，或138\u30000013\u30008000", "电话[手机号]，或[手机号]"),
        ("3 床、加三床、12号床、十二床的患者", "[床号]、[床号]、[床号]、[床号]的患者"),
        ("病床不足，临床科室协调", "病床不足，临床科室协调"),
    ],
)
def test_split_names_spaced_numbers_and_written_out_beds_are_scrubbed(text, expected):
    """A department head saw these through: a name split by an invisible or punctuation character, a
    mobile number grouped with no-break spaces, bed numbers with a space, 号 or Chinese numerals."""
    assert scrub(text, ["陈建华"]) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("请打座机021-64041990联系我", "请打座机[电话]联系我"),
        ("家里电话（0755）8123 4567，单位 0851-5123456", "家里电话[电话]，单位 [电话]"),
        ("日期2026-03-01，剂量0.5 mg，编号 010-12", "日期2026-03-01，剂量0.5 mg，编号 010-12"),
    ],
)
def test_landlines_with_an_area_code(text, expected):
    assert scrub(text) == expected
    assert scrub(expected) == expected


def test_a_cases_own_contact_and_record_number_are_found_as_written():
    from qcflow.events.scrub import Own

    own = Own(names=("王秀英",), identifiers=("ZY2026", "AE-2026-000012"), phones=("021-64041990", "+86 139 1234 5678"))
    text = ("我是王 秀英，座机 02164041990、021 6404 1990、(021)6404-1990，本地拨 64041990；手机 13912345678。"
            "病历ZY2026，见AE-2026-000012；ZY20261 与 164041990 是别的号码。")
    assert scrub(text, own=own) == ("我是[姓名]，座机 [电话]、[电话]、[电话]，本地拨 [电话]；手机 [手机号]。"
                                    "病历[编号]，见[编号]；ZY20261 与 164041990 是别的号码。")
    assert scrub(scrub(text, own=own), own=own) == scrub(text, own=own)
    assert scrub("短号 12", own=Own(phones=("12",), identifiers=("Z",))) == "短号 12"  # too short to look for
