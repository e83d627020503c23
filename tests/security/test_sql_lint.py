"""V1: no SQL is built by string formatting. An AST scan of qcflow/ refuses f-strings, `%`, `+` and
`.format()` as the statement of `text()`, `execute()`, `exec_driver_sql()` and friends, and any
formatted string literal that looks like SQL, wherever it is assigned."""
from __future__ import annotations

import ast
import os
import re

from tests.conftest import ROOT

SQL_CALLS = {"text", "execute", "exec_driver_sql", "executescript", "executemany", "execute_values"}
SQL_WORDS = re.compile(r"\b(SELECT|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|DROP|ALTER|CREATE|TRUNCATE|PRAGMA|WHERE)\b",
                       re.I)


def is_built(node: ast.AST) -> bool:
    """A string made at run time from pieces (not one literal)."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return not (isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return True
    return False


def literal_text(node: ast.AST) -> str:
    """The literal parts of a built string (to tell SQL from log messages)."""
    return " ".join(n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def findings(source: str, path: str) -> list[str]:
    tree = ast.parse(source, path)
    found = []
    built_names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and is_built(node.value):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    built_names[target.id] = node.value
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in SQL_CALLS and node.args:
                first = node.args[0]
                if is_built(first) or (isinstance(first, ast.Name) and first.id in built_names):
                    found.append(f"{path}:{node.lineno}: {name}() with a statement built from strings")
        if is_built(node) and SQL_WORDS.search(literal_text(node)) and not _is_message(node):
            found.append(f"{path}:{node.lineno}: SQL-like string built by formatting: {literal_text(node)[:60]!r}")
    return sorted(set(found))


def _is_message(node: ast.AST) -> bool:
    """Human text (a sentence with spaces but no SQL structure) is not SQL: require two SQL words."""
    return len(SQL_WORDS.findall(literal_text(node))) < 2


def python_files():
    for folder, _dirs, files in os.walk(os.path.join(ROOT, "qcflow")):
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def test_no_sql_is_built_from_strings_in_qcflow():
    problems = []
    for path in python_files():
        with open(path, encoding="utf-8") as source:
            problems += findings(source.read(), os.path.relpath(path, ROOT))
    assert problems == []


def test_the_lint_catches_each_kind_of_string_built_sql():
    bad = '''
import sqlalchemy as sa
def a(db, name):
    db.session.execute(sa.text(f"SELECT * FROM user_account WHERE username = '{name}'"))
def b(conn, name):
    conn.exec_driver_sql("DELETE FROM t WHERE id = %s" % name)
def c(conn, name):
    conn.execute(sa.text("SELECT * FROM t WHERE name = '" + name + "'"))
def d(conn, name):
    statement = "UPDATE t SET x = 1 WHERE name = '{}'".format(name)
    conn.execute(statement)
'''
    good = '''
import sqlalchemy as sa
def a(db, name):
    db.session.execute(sa.text("SELECT * FROM user_account WHERE username = :name"), {"name": name})
    log.info("selected %s rows where asked", 3)
'''
    assert {line.split(":")[1] for line in findings(bad, "bad.py")} >= {"4", "6", "8", "11"}
    assert findings(good, "good.py") == []
