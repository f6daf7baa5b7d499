"""Exercises made from solutions, and grading with nbval (the part of the practice issue built so far).

What it proves: `exercises/` is exactly what `mlops-kit assign` makes from `solutions/` (CI fails otherwise) and holds
no solution or hidden-check text; grading restores the checks from the solution, so editing a check does not help, and
hidden checks count; the solution gets full points and the untouched exercise none, with the reason; a cell that never
ends hits the timeout; grading never modifies the learner's notebook; a class folder gives one CSV; bad input gets a
clear error.
"""
import csv, re, subprocess, sys
from pathlib import Path

import nbformat
import pytest

from conftest import REPO_ROOT
from mlops_kit.grading import (HIDDEN_BEGIN, SOLUTION_BEGIN, GradingError, assign, assign_notebook, assignment_differences,
                               grade)

SOLUTIONS, EXERCISES = REPO_ROOT / "solutions", REPO_ROOT / "exercises"
COMMAND = str(Path(sys.executable).parent / "mlops-kit")
TEMPLATE = "00_template.ipynb"


def region_lines(source: str, begin: str, end: str) -> list:
    "The lines strictly inside `begin`...`end` regions"
    inside, lines = False, []
    for line in source.splitlines():
        if line.strip() == begin: inside = True
        elif line.strip() == end: inside = False
        elif inside and line.strip(): lines.append(line.strip())
    return lines


def test_exercises_are_exactly_what_assign_makes_from_the_solutions():
    assert assignment_differences(SOLUTIONS, EXERCISES) == [], "run `mlops-kit assign solutions exercises`"
    checked = subprocess.run([COMMAND, "assign", str(SOLUTIONS), str(EXERCISES), "--check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout


def test_no_learner_notebook_holds_solution_or_hidden_check_text():
    for solution_path in sorted(SOLUTIONS.rglob("*.ipynb")):
        exercise_text = (EXERCISES / solution_path.relative_to(SOLUTIONS)).read_text()
        solution = nbformat.read(solution_path, as_version=4)
        secret = [line for cell in solution.cells for begin, end in [(SOLUTION_BEGIN, "### END SOLUTION"), (HIDDEN_BEGIN, "### END HIDDEN CHECKS")]
                  for line in region_lines(cell.source, begin, end)]
        assert secret, f"{solution_path.name} has no solution or hidden checks to hide"
        leaked = [line for line in secret if line in exercise_text]
        assert not leaked, f"{solution_path.name}: the learner version shows {leaked[:3]}"


def test_the_solution_gets_full_points_and_the_untouched_exercise_none_with_the_reason():
    full, untouched = grade(SOLUTIONS / TEMPLATE, SOLUTIONS, timeout=30), grade(EXERCISES / TEMPLATE, SOLUTIONS, timeout=30)
    assert full.passed and full.points == full.max_points == 2
    assert untouched.points == 0 and not untouched.passed
    assert "NotImplementedError" in untouched.exercises[0]["message"]


def learner_copy(folder: Path, answer: str, check_edit: str | None = None) -> Path:
    "The exercise notebook with `answer` as the body of phase_of (and its check cell edited, if asked), saved in `folder`"
    notebook = nbformat.read(EXERCISES / TEMPLATE, as_version=4)
    answer_cell = next(cell for cell in notebook.cells if cell.metadata.get("mlops_kit", {}).get("role") == "answer")
    answer_cell.source = 'def phase_of(task):\n' + "\n".join("    " + line for line in answer.splitlines())
    if check_edit is not None:
        next(cell for cell in notebook.cells if cell.metadata.get("mlops_kit", {}).get("role") == "check").source = check_edit
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / TEMPLATE
    nbformat.write(notebook, path)
    return path


VISIBLE_ONLY = 'return "design" if "success criterion" in task else "development"'


def test_hidden_checks_count_at_grading_though_the_visible_ones_pass(tmp_path):
    path = learner_copy(tmp_path / "ada", VISIBLE_ONLY)
    own_run = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", str(path), "-q", "-p", "no:cacheprovider"],
                             cwd=tmp_path, capture_output=True, text=True)
    assert own_run.returncode == 0, "the learner's own run checks only the visible checks, which pass"
    card = grade(path, SOLUTIONS, timeout=30)
    assert card.points == 0 and "AssertionError" in card.exercises[0]["message"]


def test_editing_a_check_does_not_help_and_grading_leaves_the_notebook_alone(tmp_path):
    path = learner_copy(tmp_path / "bob", VISIBLE_ONLY, check_edit="print('all good')")
    before = path.read_bytes()
    card = grade(path, SOLUTIONS, timeout=30)
    assert card.points == 0
    assert path.read_bytes() == before


def test_a_cell_that_never_ends_hits_the_timeout(tmp_path):
    card = grade(learner_copy(tmp_path / "cy", "while True:\n    pass"), SOLUTIONS, timeout=3)
    assert card.points == 0 and "Timeout" in card.exercises[0]["message"]


def test_a_class_folder_is_graded_into_one_csv_and_the_exit_code_says_if_all_passed(tmp_path):
    solution_answer = next(cell.source for cell in nbformat.read(SOLUTIONS / TEMPLATE, as_version=4).cells
                           if cell.metadata.get("mlops_kit", {}).get("role") == "answer")
    body = "\n".join(line.strip() if False else line[4:] for line in solution_answer.splitlines()[2:] if "###" not in line)
    learner_copy(tmp_path / "class" / "ada", body)
    learner_copy(tmp_path / "class" / "bob", VISIBLE_ONLY)
    graded = subprocess.run([COMMAND, "grade", str(tmp_path / "class"), "--solutions", str(SOLUTIONS), "--output", str(tmp_path / "grades"),
                             "--timeout", "30"], capture_output=True, text=True)
    assert graded.returncode == 1, graded.stdout + graded.stderr
    rows = list(csv.DictReader((tmp_path / "grades" / "class.csv").open()))
    assert {(row["learner"], row["points"]) for row in rows} == {("ada", "2"), ("bob", "0")}
    assert (tmp_path / "grades" / "ada" / "00_template.scorecard.json").exists()
    assert "| phase-of-task | 0 / 2 | failed |" in (tmp_path / "grades" / "bob" / "00_template.scorecard.md").read_text()


def test_bad_input_gets_a_clear_error(tmp_path):
    with pytest.raises(GradingError, match="never closed"):
        assign_notebook(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1")]), "broken.ipynb")
    with pytest.raises(GradingError, match="No solutions folder"):
        assign(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(GradingError, match="No notebook"):
        grade(tmp_path / "missing.ipynb", SOLUTIONS)
    stray = tmp_path / "stray.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), stray)
    with pytest.raises(GradingError, match="No solution notebook named 'stray.ipynb'"):
        grade(stray, SOLUTIONS)
    missing_check = nbformat.read(EXERCISES / TEMPLATE, as_version=4)
    missing_check.cells = [cell for cell in missing_check.cells if cell.metadata.get("mlops_kit", {}).get("role") != "check"]
    (tmp_path / "dan").mkdir()
    nbformat.write(missing_check, tmp_path / "dan" / TEMPLATE)
    with pytest.raises(GradingError, match="missing from the learner's notebook"):
        grade(tmp_path / "dan" / TEMPLATE, SOLUTIONS)
    refused = subprocess.run([COMMAND, "grade", str(tmp_path / "missing.ipynb")], capture_output=True, text=True)
    assert refused.returncode == 2 and "No notebook" in refused.stderr
