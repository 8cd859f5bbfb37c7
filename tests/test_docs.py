"""The documentation's claims about the tests: every test docs/bad_input.md names exists."""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def defined_tests():
    names = set()
    for name in os.listdir(os.path.join(ROOT, "tests")):
        if name.startswith("test_") and name.endswith(".py"):
            tree = ast.parse(open(os.path.join(ROOT, "tests", name)).read())
            names |= {
                node.name
                for node in ast.walk(tree)
                if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            }
    return names


def test_every_bad_input_row_names_a_test_that_exists():
    rows = [line for line in open(os.path.join(ROOT, "docs", "bad_input.md")) if line.startswith("| ")]
    tests = defined_tests()
    checked = 0
    for row in rows:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if cells[-1] == "Test" or set(cells[-1]) <= {"-"}:
            continue
        for selector in re.findall(r"`([^`]+)`", cells[-1]):
            assert any(selector in name for name in tests), (
                f"docs/bad_input.md: no test matches -k {selector}"
            )
            checked += 1
    assert checked >= 25, checked  # the table is read, not skipped
