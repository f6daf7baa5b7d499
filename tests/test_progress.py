"""Progress across the course: `mlops-kit progress` on a learner's folder answered and graded for real.

What it proves: with two lessons answered as a learner answers them (the answer cells run in a kernel, so the widgets and
checks write the answer stores), one fully and one partly, and each graded by `mlops-kit grade`, the points per lesson
and the course total, those of visible and of hidden checks apart, are what the solutions' check cells give; a third
lesson, answered but never graded, shows its answer store's state and "not graded yet", and counts in the total only as
points still to earn; the template is left out; bad input (a folder that is not there, an unreadable answer store or
scorecard) gets one line and exit code 2, and nothing is changed.
"""
import json, shutil, subprocess, sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO_ROOT
from mlops_kit.practice import AnswerStore, HIDDEN_BEGIN, assign, course_progress

SOLUTIONS = REPO_ROOT / "solutions"
COMMAND = str(Path(sys.executable).parent / "mlops-kit")
TEMPLATE, PHASES, LIFECYCLE, DESIGN = "00_template", "09_phases_practice", "01_the_lifecycle_practice", "02_design_practice"


def meta(cell) -> dict:
    return cell.metadata.get("mlops_kit", {}) if isinstance(cell.metadata.get("mlops_kit"), dict) else {}


def most_points(solution: Path, exercises=None) -> tuple:
    "(visible, hidden) points of the solution's check cells, of `exercises` only if given: what grading can give"
    cells = [cell for cell in nbformat.read(solution, as_version=4).cells if meta(cell).get("role") == "check"
             and (exercises is None or meta(cell)["exercise"] in exercises)]
    return (sum(meta(cell).get("points", 1) for cell in cells if HIDDEN_BEGIN not in cell.source),
            sum(meta(cell).get("points", 1) for cell in cells if HIDDEN_BEGIN in cell.source))


def answer_as_a_learner(exercise: Path, solution: Path, exercises: set):
    "Write the solution's answers to `exercises` into the learner's notebook and run it in a kernel, as a learner does"
    notebook = nbformat.read(exercise, as_version=4)
    answers = {cell.id: cell.source for cell in nbformat.read(solution, as_version=4).cells
               if meta(cell).get("role") == "answer" and meta(cell)["exercise"] in exercises}
    for cell in notebook.cells:
        if cell.get("id") in answers: cell.source = answers[cell.id]
    NotebookClient(notebook, timeout=120, allow_errors=True, resources={"metadata": {"path": str(exercise.parent)}}).execute()
    nbformat.write(notebook, exercise)


def run(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([COMMAND, *map(str, argv)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    "A kit (the template, the template as lesson 9, lessons 1 and 2) and a learner's course: lesson 9 answered fully and graded, lesson 1 partly and graded, lesson 2 answered and never graded"
    root = tmp_path_factory.mktemp("progress")
    kit = root / "kit" / "solutions"
    kit.mkdir(parents=True)
    for name in (TEMPLATE, LIFECYCLE, DESIGN): shutil.copyfile(SOLUTIONS / f"{name}.ipynb", kit / f"{name}.ipynb")
    (kit / f"{PHASES}.ipynb").write_text((SOLUTIONS / f"{TEMPLATE}.ipynb").read_text().replace(TEMPLATE, PHASES))
    assign(kit, root / "course" / "exercises")
    exercises = root / "course" / "exercises"
    answer_as_a_learner(exercises / f"{PHASES}.ipynb", kit / f"{PHASES}.ipynb", {"template-first-phase", "template-phase-of-task"})
    answer_as_a_learner(exercises / f"{LIFECYCLE}.ipynb", kit / f"{LIFECYCLE}.ipynb", {"lifecycle-loop-back", "lifecycle-order"})
    AnswerStore(exercises / f"{DESIGN}.answers.json").set("design-gate", {"answer": ["a checklist item"], "tries": 0})  # as the widget saves it
    for name in (PHASES, LIFECYCLE):
        graded = run("grade", exercises / f"{name}.ipynb", "--solutions", kit, "--output", root / "course" / "grades", "--timeout", "60")
        assert graded.returncode in (0, 1) and "points" in graded.stdout, graded.stdout + graded.stderr
    return root


def test_two_lessons_answered_fully_and_partly_give_the_right_totals(course):
    kit, exercises = course / "kit" / "solutions", course / "course" / "exercises"
    full = most_points(kit / f"{PHASES}.ipynb")
    partly = most_points(kit / f"{LIFECYCLE}.ipynb", {"lifecycle-loop-back", "lifecycle-order"})
    lifecycle, design = most_points(kit / f"{LIFECYCLE}.ipynb"), most_points(kit / f"{DESIGN}.ipynb")
    assert full == (2, 1) and partly == (3, 0) and lifecycle == (7, 0) and design == (13, 5), "the kit's notebooks changed: adjust the test"
    shown = course_progress(exercises)
    lessons = {Path(lesson.notebook).stem: lesson for lesson in shown.lessons}
    assert list(lessons) == [LIFECYCLE, DESIGN, PHASES], "the template is left out"
    assert (lessons[PHASES].points("visible"), lessons[PHASES].points("hidden")) == ((2, 2), (1, 1))
    assert (lessons[LIFECYCLE].points("visible"), lessons[LIFECYCLE].points("hidden")) == ((3, 7), (0, 0))
    assert lessons[DESIGN].points() == (None, 18) and not lessons[DESIGN].graded
    assert [row["state"] for row in lessons[PHASES].exercises] == ["answered", "checked: passed"]
    assert [row["state"] for row in lessons[LIFECYCLE].exercises] == ["answered", "answered", "not started", "not started"]
    assert [row["state"] for row in lessons[DESIGN].exercises] == ["not started", "not started", "answered"] + ["not started"] * 4
    assert (shown.points("visible"), shown.points("hidden"), shown.points()) == ((5, 22), (1, 6), (6, 28))
    printed = run("progress", exercises)
    assert printed.returncode == 0, printed.stderr
    rows = {line.split()[0]: line for line in printed.stdout.splitlines() if line.split()}
    assert rows[LIFECYCLE].split()[:4] == [LIFECYCLE, "2", "/", "4"] and "3 / 7" in rows[LIFECYCLE]
    assert "not graded yet" in rows[DESIGN] and "- / 18" in rows[DESIGN] and "1 / 7" in rows[DESIGN]
    assert rows["course"].split()[2:] == ["5", "/", "13", "5", "/", "22", "1", "/", "6", "6", "/", "28", "2", "of", "3", "lessons", "graded"]
    assert TEMPLATE not in printed.stdout


def test_the_latest_scorecard_counts(course, tmp_path):
    "A lesson graded again, now with every answer, shows the new points: the newer scorecard wins"
    shutil.copytree(course / "course", tmp_path / "course")
    exercises = tmp_path / "course" / "exercises"
    kit = course / "kit" / "solutions"
    answer_as_a_learner(exercises / f"{LIFECYCLE}.ipynb", kit / f"{LIFECYCLE}.ipynb", {"lifecycle-task-phase", "lifecycle-who-leads"})
    assert "changed since graded" in run("progress", exercises).stdout
    graded = run("grade", exercises, "--solutions", kit, "--output", tmp_path / "course" / "grades")  # the folder: grades/<notebook>/
    assert "left out (not an exercise notebook of the course): 00_template.ipynb" in graded.stdout, graded.stdout + graded.stderr
    shown = course_progress(exercises)
    assert {Path(lesson.notebook).stem: lesson.points() for lesson in shown.lessons} == {LIFECYCLE: (7, 7), DESIGN: (0, 18), PHASES: (3, 3)}
    assert shown.points() == (10, 28)


@pytest.mark.parametrize("break_it, message", [
    (lambda root: root / "nowhere", "No folder at"),
    (lambda root: (root / "exercises" / f"{DESIGN}.answers.json").write_text("{not json") and root / "exercises",
     f"{DESIGN}.answers.json' cannot be read"),
    (lambda root: (root / "grades" / f"{PHASES}.scorecard.json").write_text('{"exercises": 3}') and root / "exercises",
     f"{PHASES}.scorecard.json' cannot be read"),
    (lambda root: (root / "exercises" / f"{LIFECYCLE}.ipynb").write_text("{") and root / "exercises", f"{LIFECYCLE}.ipynb' is not a readable notebook"),
])
def test_bad_input_gets_one_line_and_changes_nothing(course, tmp_path, break_it, message):
    shutil.copytree(course / "course", tmp_path / "course")
    folder = break_it(tmp_path / "course")
    before = {path: path.read_bytes() for path in (tmp_path / "course").rglob("*") if path.is_file() and path.suffix != ".lock"}
    shown = subprocess.run([COMMAND, "progress", str(folder.relative_to(tmp_path / "course"))], capture_output=True, text=True,
                           cwd=tmp_path / "course")
    assert shown.returncode == 2 and shown.stdout == "", shown.stdout + shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1 and shown.stderr.startswith("mlops-kit progress: error: ")
    assert message in shown.stderr, shown.stderr
    assert before == {path: path.read_bytes() for path in (tmp_path / "course").rglob("*") if path.is_file() and path.suffix != ".lock"}
