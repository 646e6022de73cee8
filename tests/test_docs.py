"""The docs point at tests and code that exist: a renamed test or module shows up here, not in a reader's search."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

DOCS = sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md", ROOT / "bench" / "README.md"])
TEST_REF = re.compile(r"\b(?:tests/)?(test_\w+)(?:\.py)?::(test_\w+)")
PATH_REF = re.compile(r"`((?:expensebot|bench|tests)/[\w/]+\.(?:py|sql|tpl))`")


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_test_a_doc_names_exists(doc):
    missing = []
    for module, name in TEST_REF.findall(doc.read_text(encoding="utf-8")):
        source = ROOT / "tests" / f"{module}.py"
        if not source.exists() or not re.search(rf"^def {name}\(", source.read_text(encoding="utf-8"), re.M):
            missing.append(f"{module}::{name}")
    assert missing == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_file_a_doc_names_exists(doc):
    missing = [path for path in PATH_REF.findall(doc.read_text(encoding="utf-8")) if not (ROOT / path).exists()]
    assert missing == []


def test_every_log_event_the_code_writes_is_in_the_reference():
    code = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "expensebot").rglob("*.py"))
    events = set(re.findall(r'log_event\(\s*\w+,\s*"(\w+)"', code))
    events |= {name for pair in re.findall(r'Incident\(\s*\w+,\s*"(\w+)",\s*"(\w+)"', code) for name in pair}
    events |= set(re.findall(r'\bevent="(\w+)"', code))
    reference = (ROOT / "docs" / "REFERENCE.md").read_text(encoding="utf-8")
    assert sorted(event for event in events if f"`{event}`" not in reference) == []
