"""The library's notebooks read as lessons: short exported cells, one definition each, and every public definition
shown and tested right after it (as fastcore's notebooks do). These are the figures issue 15 asks for."""
import ast, re, statistics
from pathlib import Path

import nbformat
import pytest

from conftest import REPO_ROOT

MEDIAN_LIMIT, LONGEST_LIMIT, TEST_WITHIN = 12, 60, 3
TEST_CALL = re.compile(r"\b(assert|test_eq|test_ne|test_fail|test_close|test_is|test_warns|test_stdout|test_shuffled|test_fig_exists|pytest\.raises)\b")


def library_notebooks() -> list[Path]:
    "The notebooks that export a module (the course lessons export nothing)"
    return sorted(path for path in (REPO_ROOT / "nbs").rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in path.parts and exports_a_module(path))


def exports_a_module(path: Path) -> bool:
    return any(cell.cell_type == "code" and cell.source.startswith("#| default_exp") for cell in nbformat.read(path, 4).cells)


def is_exported(cell) -> bool:
    return cell.cell_type == "code" and bool(re.match(r"#\|\s*export\b", cell.source))


def code_lines(cell) -> int:
    "Lines of code in a cell, not counting blank lines and `#|` directives"
    return sum(1 for line in cell.source.splitlines() if line.strip() and not line.lstrip().startswith("#|"))


def public_definitions(cell) -> list[str]:
    "The public functions and classes a cell defines"
    tree = ast.parse("\n".join("" if line.lstrip().startswith("#|") else line for line in cell.source.splitlines()))
    return [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and not node.name.startswith("_")]


def definitions_without_a_test(cells) -> list[str]:
    "Public definitions not named, within the next TEST_WITHIN cells, by a cell that tests something"
    missing = []
    for index, cell in enumerate(cells):
        if not is_exported(cell): continue
        following = [other for other in cells[index + 1:index + 1 + TEST_WITHIN] if other.cell_type == "code" and not is_exported(other)]
        for name in public_definitions(cell):
            if not any(re.search(rf"\b{name}\b", other.source) and TEST_CALL.search(other.source) for other in following):
                missing.append(name)
    return missing


def exported_cells(path: Path) -> list:
    return [cell for cell in nbformat.read(path, 4).cells if is_exported(cell)]


NOTEBOOKS = library_notebooks()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.relative_to(REPO_ROOT / "nbs").as_posix())
def test_exported_cells_are_short(notebook):
    sizes = [code_lines(cell) for cell in exported_cells(notebook)]
    assert max(sizes, default=0) <= LONGEST_LIMIT, f"longest exported cell has {max(sizes)} lines (limit {LONGEST_LIMIT})"
    assert statistics.median(sizes) <= MEDIAN_LIMIT, f"median exported cell has {statistics.median(sizes)} lines (limit {MEDIAN_LIMIT})"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.relative_to(REPO_ROOT / "nbs").as_posix())
def test_each_public_definition_is_tested_right_after_it(notebook):
    cells = nbformat.read(notebook, 4).cells
    assert definitions_without_a_test(cells) == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.relative_to(REPO_ROOT / "nbs").as_posix())
def test_one_definition_per_exported_cell(notebook):
    crowded = [public_definitions(cell) for cell in exported_cells(notebook) if len(public_definitions(cell)) > 1]
    assert crowded == []


def test_the_library_as_a_whole_meets_the_figures():
    sizes = [code_lines(cell) for path in NOTEBOOKS for cell in exported_cells(path)]
    print(f"{len(sizes)} exported cells: median {statistics.median(sizes)} lines, longest {max(sizes)}")
    assert statistics.median(sizes) <= MEDIAN_LIMIT and max(sizes) <= LONGEST_LIMIT


def test_the_checks_catch_what_they_should():
    "The figures above are computed right: a long cell, two definitions in one cell, a definition with no test"
    cell = nbformat.v4.new_code_cell
    long_cell = cell("#| export\n" + "\n".join(f"x{i} = {i}" for i in range(61)) + "\n\n#| hide\n")
    assert code_lines(long_cell) == 61
    assert public_definitions(cell("#| export\ndef f(): pass\nclass G: pass\ndef _h(): pass")) == ["f", "G"]
    cells = [cell("#| export\ndef f(): pass"), nbformat.v4.new_markdown_cell("f is ..."), cell("f()"), cell("assert f() is None")]
    assert definitions_without_a_test(cells) == []
    assert definitions_without_a_test(cells[:3]) == ["f"]  # shown, but nothing asserted
    assert definitions_without_a_test([cells[0], cell("#| export\ndef g(): pass"), cell("g()"), cell("x = 1"), cell("assert f")]) == ["f", "g"]
