"""Exercises made from solutions, graded with nbval, and the kit's own exercises validated.

What it proves: `exercises/` is exactly what `mlops-kit assign` makes from `solutions/` (CI fails otherwise) and holds
no solution or hidden-check text; grading restores the question and check cells from the solution, so editing a check
does not help, and hidden checks count but are shown apart from the visible ones; a learner's own run (plain
`pytest --nbval-lax`) says exactly what grading without the hidden checks says; the solution gets full points and the
untouched exercise none, with a hint; a widget answer survives a kernel restart and grading counts it; a cell that never
ends hits the timeout; grading never modifies the learner's notebook or answers; a class folder gives one CSV; every
exercise of the kit survives `mlops-kit validate` (solutions pass, untouched notebooks and mechanical cheats fail), and
validate catches a weak exercise; bad input gets a clear error.
"""
import csv, json, re, shutil, subprocess, sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import nbformat
import pytest

from conftest import REPO_ROOT
from mlops_kit.grading import (CHEATS, GradingError, assign, assign_notebook, assignment_differences, grade, leaked_lines,
                               validate)

SOLUTIONS, EXERCISES = REPO_ROOT / "solutions", REPO_ROOT / "exercises"
COMMAND = str(Path(sys.executable).parent / "mlops-kit")
TEMPLATE = "00_template.ipynb"
QUIZ, CODE = "template-first-phase", "template-phase-of-task"
RIGHT_BODY = '''phases = {"success criterion": "design", "adds value": "design", "experiment grid": "development",
          "hyperparameters": "development", "drift": "deployment", "true labels": "deployment"}
return next(phase for words, phase in phases.items() if words in task)'''
VISIBLE_ONLY = 'return "design" if "success criterion" in task else "development"'


def meta(cell) -> dict:
    return cell.metadata.get("mlops_kit", {})


def answer_with_the_widget(folder: Path, notebook: Path, option: str):
    "Answer the template's multiple-choice question as a learner does: run its cells and pick `option` in the widget"
    cells = nbformat.read(notebook, as_version=4).cells
    setup = next(cell.source for cell in cells if "AnswerStore(" in cell.source)
    question = next(cell.source for cell in cells if meta(cell) == {"exercise": QUIZ, "role": "question"})
    namespace = {}
    exec(setup.replace('AnswerStore("00_template.answers.json")', f"AnswerStore({str(folder / '00_template.answers.json')!r})"), namespace)
    exec(question, namespace)
    namespace["first_phase"].input.value = option  # what clicking the radio button does


def learner_copy(folder: Path, body: str | None = None, widget_option: str | None = None, check_edit: str | None = None) -> Path:
    "The exercise notebook saved in `folder`: `body` as phase_of's body, `widget_option` picked, its visible check edited"
    notebook = nbformat.read(EXERCISES / TEMPLATE, as_version=4)
    if body is not None:
        answer_cell = next(cell for cell in notebook.cells if meta(cell).get("role") == "answer" and meta(cell)["exercise"] == CODE)
        answer_cell.source = "def phase_of(task):\n" + "\n".join("    " + line for line in body.splitlines())
    if check_edit is not None:
        next(cell for cell in notebook.cells if meta(cell).get("role") == "check" and meta(cell)["exercise"] == CODE).source = check_edit
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / TEMPLATE
    nbformat.write(notebook, path)
    if widget_option is not None: answer_with_the_widget(folder, path, widget_option)
    return path


def rows(card) -> dict:
    return {row["exercise"]: row for row in card.exercises}


def test_exercises_are_exactly_what_assign_makes_from_the_solutions():
    assert assignment_differences(SOLUTIONS, EXERCISES) == [], "run `mlops-kit assign solutions exercises`"
    checked = subprocess.run([COMMAND, "assign", str(SOLUTIONS), str(EXERCISES), "--check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout


def test_no_learner_notebook_holds_solution_or_hidden_check_text_or_outputs():
    for solution_path in sorted(SOLUTIONS.rglob("*.ipynb")):
        solution = nbformat.read(solution_path, as_version=4)
        exercise = nbformat.read(EXERCISES / solution_path.relative_to(SOLUTIONS), as_version=4)
        assert leaked_lines(solution, exercise) == [], solution_path.name
        assert not [cell for cell in exercise.cells if cell.cell_type == "code" and cell.outputs], solution_path.name
        # The check itself works: the solution's own notebook "leaks" everything.
        assert leaked_lines(solution, solution), f"{solution_path.name} has no solution or hidden checks to hide"


def test_widget_answers_never_appear_in_plain_text_in_the_learner_notebook():
    for solution_path in sorted(SOLUTIONS.rglob("*.ipynb")):
        solution = nbformat.read(solution_path, as_version=4)
        exercise_text = (EXERCISES / solution_path.relative_to(SOLUTIONS)).read_text()
        for cell in solution.cells:
            if meta(cell).get("kind") == "widget":
                answer_lines = [line.strip() for line in cell.source.splitlines() if ".answer =" in line]
                assert answer_lines, f"{solution_path.name}: widget answer cell {cell.id} sets no answer"
                assert not [line for line in answer_lines if line in exercise_text]


def test_the_solution_gets_full_points_and_the_untouched_exercise_none_with_a_hint():
    full, untouched = grade(SOLUTIONS / TEMPLATE, SOLUTIONS, timeout=30), grade(EXERCISES / TEMPLATE, SOLUTIONS, timeout=30)
    assert full.passed and full.points == full.max_points == 3
    assert untouched.points == 0 and not untouched.passed
    assert "no answer yet" in rows(untouched)[QUIZ]["message"] and "Hint 1 of 2" in rows(untouched)[QUIZ]["message"]
    assert "NotImplementedError" in rows(untouched)[CODE]["message"] and "Hint 1 of 2" in rows(untouched)[CODE]["message"]


def test_hidden_checks_count_at_grading_and_the_scorecard_shows_them_apart(tmp_path):
    path = learner_copy(tmp_path / "ada", VISIBLE_ONLY, widget_option="Design")
    own_run = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", str(path), "-q", "-p", "no:cacheprovider"],
                             cwd=path.parent, capture_output=True, text=True)
    assert own_run.returncode == 0, "the learner's own run checks only the visible checks, which pass"
    card = grade(path, SOLUTIONS, timeout=30)
    code = rows(card)[CODE]
    assert (code["visible"], code["hidden"], code["points"]) == ("passed", "failed", 0)
    assert "a hidden check failed" in code["message"] and "Hint 1 of 2" in code["message"]
    assert rows(card)[QUIZ]["points"] == 1 and card.points == 1
    assert f"| {CODE} | 0 / 2 | passed | failed |" in card.markdown()
    assert "hidden checks pass for 0 of the 1 that have them" in card.markdown()


def own_run_verdicts(path: Path) -> dict:
    "Exercise -> whether all its check cells passed, in the learner's own plain `pytest --nbval-lax` run of `path`"
    report = path.with_suffix(".xml")
    subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", str(path), "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
                   cwd=path.parent, capture_output=True, text=True)
    failed = {int(re.search(r"Cell (\d+)", case.get("name"))[1]) for case in ElementTree.parse(report).iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None}
    code_cells = [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    verdicts = {}
    for number, cell in enumerate(code_cells):
        if meta(cell).get("role") == "check": verdicts[meta(cell)["exercise"]] = verdicts.get(meta(cell)["exercise"], True) and number not in failed
    return verdicts


def test_the_learners_own_run_says_what_grading_without_hidden_checks_says(tmp_path):
    "Self-check and grading agree: plain `pytest --nbval-lax` and grade(include_hidden=False), exercise by exercise"
    variants = {"untouched": {}, "right": dict(body=RIGHT_BODY, widget_option="Design"),
                "visible only": dict(body=VISIBLE_ONLY, widget_option="Design"), "wrong widget": dict(body=RIGHT_BODY, widget_option="Deployment")}
    for name, answers in variants.items():
        path = learner_copy(tmp_path / name.replace(" ", "-"), **answers)
        own = own_run_verdicts(path)
        card = grade(path, SOLUTIONS, timeout=30, include_hidden=False)
        assert {row["exercise"]: row["passed"] for row in card.exercises} == own, name
    assert own == {QUIZ: False, CODE: True}  # the last variant: the wrong widget answer fails in both


@pytest.mark.parametrize("notebook", sorted(path.name for path in SOLUTIONS.glob("*.ipynb")))
def test_self_check_and_grading_agree_on_every_exercise_notebook(notebook, tmp_path):
    "Untouched, every exercise fails in both; as the solution, every exercise passes in both"
    for source, expected in [(EXERCISES, False), (SOLUTIONS, True)]:
        folder = tmp_path / source.name
        folder.mkdir()
        path = Path(shutil.copyfile(source / notebook, folder / notebook))
        own = own_run_verdicts(path)
        path.with_name(f"{path.stem}.answers.json").unlink(missing_ok=True)  # the own run of the solution saved its answers
        card = grade(path, SOLUTIONS, timeout=60, include_hidden=False)
        assert {row["exercise"]: row["passed"] for row in card.exercises} == own
        assert set(own.values()) == {expected}, (source.name, own)


def test_a_widget_answer_survives_a_kernel_restart_and_grading_counts_it(tmp_path):
    "A real kernel: answer in the widget, restart the kernel, run the cells again: the answer is back and checks"
    from jupyter_client.manager import start_new_kernel
    path = learner_copy(tmp_path / "eve")
    cells = nbformat.read(path, as_version=4).cells
    setup, question, check = (next(cell.source for cell in cells if predicate(cell)) for predicate in (
        lambda cell: "AnswerStore(" in cell.source, lambda cell: meta(cell) == {"exercise": QUIZ, "role": "question"},
        lambda cell: meta(cell).get("role") == "check" and meta(cell)["exercise"] == QUIZ))
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(path.parent))

    def run(code: str) -> str:
        printed = []
        reply = client.execute_interactive(code, timeout=60, output_hook=lambda message: printed.append(message["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(printed)
    try:
        run(setup); run(question)
        run('first_phase.input.value = "Design"')  # the learner clicks "Design"
        manager.restart_kernel(now=True)
        client.wait_for_ready(timeout=60)
        run(setup); run(question)
        assert run("print(first_phase.answer, first_phase.input.value)").split() == ["Design", "Design"]
        assert "correct" in run(check)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert rows(grade(path, SOLUTIONS, timeout=30))[QUIZ]["passed"]


def test_editing_a_check_does_not_help_and_grading_leaves_the_notebook_and_answers_alone(tmp_path):
    path = learner_copy(tmp_path / "bob", VISIBLE_ONLY, widget_option="Design", check_edit="print('all good')")
    answers = path.with_name("00_template.answers.json")
    before = path.read_bytes(), answers.read_bytes()
    card = grade(path, SOLUTIONS, timeout=30)
    assert rows(card)[CODE]["points"] == 0
    assert (path.read_bytes(), answers.read_bytes()) == before


def test_a_cell_that_never_ends_hits_the_timeout(tmp_path):
    card = grade(learner_copy(tmp_path / "cy", "while True:\n    pass", widget_option="Design"), SOLUTIONS, timeout=3)
    assert rows(card)[CODE]["points"] == 0 and "Timeout" in rows(card)[CODE]["message"]


def test_a_class_folder_is_graded_into_one_csv_and_the_exit_code_says_if_all_passed(tmp_path):
    learner_copy(tmp_path / "class" / "ada", RIGHT_BODY, widget_option="Design")
    learner_copy(tmp_path / "class" / "bob", VISIBLE_ONLY)
    learner_copy(tmp_path / "class" / "cy", RIGHT_BODY, widget_option="Development")
    graded = subprocess.run([COMMAND, "grade", str(tmp_path / "class"), "--solutions", str(SOLUTIONS), "--output", str(tmp_path / "grades"),
                             "--timeout", "30"], capture_output=True, text=True)
    assert graded.returncode == 1, graded.stdout + graded.stderr
    table = list(csv.DictReader((tmp_path / "grades" / "class.csv").open()))
    points = {(row["learner"], row["exercise"]): (row["points"], row["visible"], row["hidden"]) for row in table}
    assert points == {("ada", QUIZ): ("1", "passed", "none"), ("ada", CODE): ("2", "passed", "passed"),
                      ("bob", QUIZ): ("0", "failed", "none"), ("bob", CODE): ("0", "passed", "failed"),
                      ("cy", QUIZ): ("0", "failed", "none"), ("cy", CODE): ("2", "passed", "passed")}
    scorecard = json.loads((tmp_path / "grades" / "ada" / "00_template.scorecard.json").read_text())
    assert scorecard["points"] == scorecard["max_points"] == 3
    assert f"| {CODE} | 0 / 2 | passed | failed |" in (tmp_path / "grades" / "bob" / "00_template.scorecard.md").read_text()
    alone = subprocess.run([COMMAND, "grade", str(tmp_path / "class" / "ada" / TEMPLATE), "--solutions", str(SOLUTIONS),
                            "--output", str(tmp_path / "ada-grades")], capture_output=True, text=True)
    assert alone.returncode == 0 and "3 / 3 points" in alone.stdout


def kit_copy(folder: Path, names: list) -> tuple[Path, Path]:
    "Copies of some solution and exercise notebooks, so validation never writes into the repository"
    for source, target in [(SOLUTIONS, folder / "solutions"), (EXERCISES, folder / "exercises")]:
        target.mkdir(parents=True)
        for name in names: shutil.copyfile(source / name, target / name)
    return folder / "solutions", folder / "exercises"


@pytest.mark.parametrize("notebook", sorted(path.name for path in SOLUTIONS.glob("*.ipynb")))
def test_every_exercise_of_the_kit_survives_validation(notebook, tmp_path):
    solutions, exercises = kit_copy(tmp_path, [notebook])
    validation = validate(solutions, exercises, timeout=60, short_timeout=10, jobs=1)
    assert validation.passed, validation.markdown()
    checks = {row["check"] for row in validation.rows}
    assert {"solution earns full points", "untouched exercise fails, with a hint", "no solution or hidden-check text"} <= checks
    assert {f"cheat: {cheat}" for cheat in CHEATS} <= checks


@pytest.mark.parametrize("cheat", ["check function patched", "wrong answer with a forged seal"])
def test_cheats_that_fool_plain_nbval_earn_nothing_at_grading(cheat, tmp_path):
    "The cheats are real: a learner's own nbval run passes every check cell, grading gives no point"
    solution = nbformat.read(SOLUTIONS / "01_the_lifecycle.ipynb", as_version=4)
    path = tmp_path / "01_the_lifecycle.ipynb"
    nbformat.write(CHEATS[cheat](solution, assign_notebook(solution)), path)
    assert set(own_run_verdicts(path).values()) == {True}, "plain nbval is fooled"
    path.with_name("01_the_lifecycle.answers.json").unlink(missing_ok=True)
    card = grade(path, SOLUTIONS, timeout=60)
    assert card.points == 0 and not any(row["passed"] for row in card.exercises), card.markdown()


def test_validate_catches_a_weak_exercise(tmp_path):
    "A check written as a bare assert is fooled by an always-equal answer, and a check without hints gives none: both reported"
    solutions, exercises = kit_copy(tmp_path, [TEMPLATE])
    weak = nbformat.read(solutions / TEMPLATE, as_version=4)
    for cell in weak.cells:
        if meta(cell) == {"exercise": CODE, "role": "check", "points": 1}:
            cell.source = 'assert phase_of("compare twenty models in an experiment grid") == "development"'
        if meta(cell) == {"exercise": CODE, "role": "question"}: cell.source = cell.source.replace("hints=[", "hints=[] and [")
    nbformat.write(weak, solutions / TEMPLATE)
    assign(solutions, exercises)
    result = subprocess.run([COMMAND, "validate", "--solutions", str(solutions), "--exercises", str(exercises), "--jobs", "2",
                             "--short-timeout", "10"], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout
    assert re.search(r"cheat: always-equal answer \| PROBLEM \| fools the checks of \['template-phase-of-task'\]", result.stdout), result.stdout
    assert re.search(r"untouched exercise fails, with a hint \| PROBLEM \| .*no hint in the message of \['template-phase-of-task'\]", result.stdout)


def test_bad_input_gets_a_clear_error(tmp_path):
    with pytest.raises(GradingError, match="never closed"):
        assign_notebook(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1")]), "broken.ipynb")
    with pytest.raises(GradingError, match="No solutions folder"):
        assign(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(GradingError, match="No solutions folder"):
        validate(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GradingError, match="No solution notebooks"):
        validate(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(GradingError, match="No notebook"):
        grade(tmp_path / "missing.ipynb", SOLUTIONS)
    stray = tmp_path / "stray.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), stray)
    with pytest.raises(GradingError, match="No solution notebook named 'stray.ipynb'"):
        grade(stray, SOLUTIONS)
    missing_check = nbformat.read(EXERCISES / TEMPLATE, as_version=4)
    missing_check.cells = [cell for cell in missing_check.cells if meta(cell).get("role") != "check"]
    (tmp_path / "dan").mkdir()
    nbformat.write(missing_check, tmp_path / "dan" / TEMPLATE)
    with pytest.raises(GradingError, match="missing from the learner's notebook"):
        grade(tmp_path / "dan" / TEMPLATE, SOLUTIONS)
    refused = subprocess.run([COMMAND, "grade", str(tmp_path / "missing.ipynb")], capture_output=True, text=True)
    assert refused.returncode == 2 and "No notebook" in refused.stderr
    refused = subprocess.run([COMMAND, "validate", "--solutions", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert refused.returncode == 2 and "No solutions folder" in refused.stderr
    refused = subprocess.run([COMMAND, "validate", "--jobs", "0"], capture_output=True, text=True)
    assert refused.returncode == 2 and "--jobs" in refused.stderr
    refused = subprocess.run([COMMAND, "seal", "lifecycle-first-phase", "Design"], capture_output=True, text=True)
    assert refused.returncode == 2 and "ANSWER is JSON" in refused.stderr
    sealed = subprocess.run([COMMAND, "seal", "lifecycle-first-phase", '"Design"'], capture_output=True, text=True)
    assert sealed.returncode == 0 and re.fullmatch(r"sha256:[0-9a-f]{64}\n", sealed.stdout)
