"""Every page of every demo role, as its user reads it: no raw code, no `None`, no citation token.

The walk logs in as each user of the demo data (`make run`), follows every link it is shown (GET,
same site) in Chinese and then in English, and reads the visible text of each page and PDF: the
text nodes a browser draws, the options of select boxes and the labels of buttons; not scripts,
styles, attributes or hidden inputs. Pages of the same shape (/events/1, /events/2) are read a
few times, not all. A finding names the page, the language and the offending words, so a failure
reads as the to-do list it is.
"""
from __future__ import annotations

import re
import subprocess
from collections import Counter, deque
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from tests.conftest import demo_app, login

#: Pages of one shape (ids replaced by #) read per role and language.
PER_SHAPE = 2
#: A safety stop for one role and language; the demo has far fewer pages.
MAX_PAGES = 250
#: Links that change state or leave the pages the walk reads.
SKIP = re.compile(r"^/(logout|api/|static/)|/export|\.csv$|[?&]lang=")

#: Words of a code anywhere: snake_case identifiers, audit actions (event.triage), actor keys (user:4),
#: Python's None and the plans' line citations ([003:1235]).
CODE_PATTERNS = {
    "snake_case code": re.compile(r"(?<![\w./@-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w/@-])"),
    "dotted code": re.compile(r"(?<![\w./@-])[a-z]+(?:_[a-z]+)*\.[a-z]+(?:_[a-z]+)*(?![\w/@(-])"),
    "actor key": re.compile(r"\b(?:user|system|staff|operation|event|patient|task|plan):\d+\b"),
    "None": re.compile(r"(?<![\w-])None(?![\w-])"),
    "citation token": re.compile(r"\[\d{3}:\d+(?:-\d+)?\]"),
}
#: In the Chinese interface, lower-case English words are codes or untranslated text. Words a
#: Chinese user reads as they are: units, product and standard names, file types.
ASCII_WORD = re.compile(r"(?<![\w./@:-])[a-z]{3,}(?![\w/@:-])")
ALLOWED_WORDS = {"qcflow", "mmhg", "mmol", "pdf", "csv", "json", "api", "http", "https", "wechat", "mdt", "totp"}
#: Pages whose text is about codes (the API reference shows field names on purpose).
CODE_PAGES = re.compile(r"^/api/docs")


class VisibleText(HTMLParser):
    """The text a browser draws: text nodes outside script/style/template/head, option labels, button values.

    Text marked up as code (<code>, <kbd>, <samp>, <pre>: a CSV column to fill, a command to type) is a code
    on purpose and is left out."""

    HIDDEN = {"script", "style", "template", "head", "noscript", "code", "kbd", "samp", "pre"}
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.parts: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        if tag == "input" and attributes.get("type") in ("submit", "button") and attributes.get("value"):
            self.parts.append(attributes["value"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        if not self.HIDDEN.intersection(self.stack) and data.strip():
            self.parts.append(data.strip())

    @property
    def text(self) -> str:
        return "\n".join(self.parts)


def findings_in(text: str, language: str, names: frozenset = frozenset()) -> list[str]:
    """What reads as a code in `text`; `names` are the user names (log-in names are ASCII by design)."""
    found = []
    for name, pattern in CODE_PATTERNS.items():
        found += [f"{name} {m.group(0)!r}" for m in pattern.finditer(text)]
    if language == "zh":
        found += [f"English word {w!r}" for w in ASCII_WORD.findall(text) if w not in ALLOWED_WORDS | names]
    return found


def test_the_detector_catches_each_class_of_raw_text():
    """The walk is only as good as its detector: each class the pages once showed is caught."""
    seen = {
        "第 2 次随访（four_level_surgery，电话）": "snake_case code",
        "10:02 event.triage": "dotted code",
        "王主任 user:4": "actor key",
        "有效期至 None": "None",
        "(Guizhou [000:93] 手术)": "citation token",
    }
    for text, kind in seen.items():
        assert any(f.startswith(kind) for f in findings_in(text, "en")), text
    assert findings_in("状态 requested", "zh") == ["English word 'requested'"]
    assert findings_in("状态 已申请 · 下载 PDF · 血压 mmHg · test@example.org", "zh") == []
    assert findings_in("Status requested", "en") == []  # English words are English in English


def pdf_text(data: bytes, tmp_path) -> str:
    path = tmp_path / "page.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def walked_app(demo_snapshot, tmp_path_factory):
    """A migrated database with the demo data of `make run`."""
    from qcflow.extensions import db

    app, _data = demo_app(demo_snapshot, tmp_path_factory.mktemp("walk"))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def shape(path: str) -> str:
    return re.sub(r"\d+", "#", path)


def walk(client, tmp_path, language: str, names: frozenset) -> dict[str, list[str]]:
    """Read every page reachable from the home page; return {page: findings}."""
    queue, seen, shapes, problems = deque(["/?lang=" + language]), set(), Counter(), {}
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        response = client.get(url)
        path = urlsplit(url).path
        assert response.status_code < 500, f"{url} ({language}): {response.status_code}"
        if response.status_code != 200:
            continue
        kind = response.mimetype
        if kind == "application/pdf":
            text, links = pdf_text(response.data, tmp_path), []
        elif kind == "text/html":
            parser = VisibleText()
            parser.feed(response.get_data(as_text=True))
            text, links = parser.text, parser.links
        else:
            continue
        if not CODE_PAGES.match(path):
            found = findings_in(text, language, names)
            if found:
                problems[url] = sorted(set(found))
        for href in links:
            target = urljoin(url, href.split("#")[0])
            parts = urlsplit(target)
            if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
                continue
            local = parts.path + (f"?{parts.query}" if parts.query else "")
            if local in seen or SKIP.search(local) or shapes[shape(local)] >= PER_SHAPE:
                continue
            seen.add(local)
            shapes[shape(local)] += 1
            queue.append(local)
    # a walk that reads nothing proves nothing
    assert len(seen) >= 10, f"the walk read only {len(seen)} pages: {sorted(seen)}"
    return problems


def demo_users():
    from qcflow.demo import DEMO_USERS

    return [(username, password) for username, password, *_rest in DEMO_USERS]


@pytest.mark.parametrize("username,password", demo_users(), ids=[u for u, _p in demo_users()])
def test_every_page_of_every_demo_user_shows_labels_not_codes(walked_app, tmp_path, username, password):
    client = walked_app.test_client()
    response = login(client, username, password)
    assert response.status_code == 302, f"{username} could not log in"
    problems = {}
    for language in ("zh", "en"):
        problems.update({f"[{language}] {url}": found for url, found in walk(client, tmp_path, language, frozenset(u for u, _p in demo_users())).items()})
    assert not problems, "\n".join(f"{url}: {', '.join(found)}" for url, found in sorted(problems.items()))


def test_the_pages_without_login_show_labels_not_codes(walked_app, tmp_path):
    client = walked_app.test_client()
    problems = {}
    for language in ("zh", "en"):
        for start in ("/report", "/receipt", "/login"):
            response = client.get(f"{start}?lang={language}")
            assert response.status_code == 200, start
            parser = VisibleText()
            parser.feed(response.get_data(as_text=True))
            found = findings_in(parser.text, language)
            if found:
                problems[f"[{language}] {start}"] = found
    assert not problems, problems
