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
import csv, hashlib, json, re, shutil, subprocess, sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import nbformat
import pytest

from conftest import REPO_ROOT
from mlops_kit.practice import (CHEATS, GradingError, assign, assign_notebook, assignment_differences, grade, grade_folder,
                               leaked_lines, validate)

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
    namespace, answers = {}, f"{notebook.stem}.answers.json"
    exec(setup.replace(f'AnswerStore("{answers}")', f"AnswerStore({str(folder / answers)!r})"), namespace)
    exec(question, namespace)
    namespace["first_phase"].input.value = option  # what clicking the radio button does


def learner_copy(folder: Path, body: str | None = None, widget_option: str | None = None, check_edit: str | None = None,
                 exercises: Path = EXERCISES, name: str = TEMPLATE) -> Path:
    "The exercise notebook `name` saved in `folder`: `body` as phase_of's body, `widget_option` picked, its visible check edited"
    notebook = nbformat.read(exercises / name, as_version=4)
    if body is not None:
        answer_cell = next(cell for cell in notebook.cells if meta(cell).get("role") == "answer" and meta(cell)["exercise"] == CODE)
        answer_cell.source = "def phase_of(task):\n" + "\n".join("    " + line for line in body.splitlines())
    if check_edit is not None:
        next(cell for cell in notebook.cells if meta(cell).get("role") == "check" and meta(cell)["exercise"] == CODE).source = check_edit
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    nbformat.write(notebook, path)
    if widget_option is not None: answer_with_the_widget(folder, path, widget_option)
    return path


LESSON = "01_phases_practice.ipynb"  # the template under a lesson's name: grading a folder leaves the template out


def template_as_a_lesson(root: Path) -> tuple[Path, Path]:
    "Solutions (the template, and the template again as the lesson exercise LESSON) and their exercises under `root`"
    (root / "solutions").mkdir(parents=True)
    shutil.copyfile(SOLUTIONS / TEMPLATE, root / "solutions" / TEMPLATE)
    (root / "solutions" / LESSON).write_text((SOLUTIONS / TEMPLATE).read_text().replace(Path(TEMPLATE).stem, Path(LESSON).stem))
    assign(root / "solutions", root / "exercises")
    return root / "solutions", root / "exercises"


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
    solutions, exercises = template_as_a_lesson(tmp_path / "kit")
    learner_copy(tmp_path / "class" / "ada", RIGHT_BODY, widget_option="Design", exercises=exercises, name=LESSON)
    learner_copy(tmp_path / "class" / "bob", VISIBLE_ONLY, exercises=exercises, name=LESSON)
    learner_copy(tmp_path / "class" / "cy", RIGHT_BODY, widget_option="Development", exercises=exercises, name=LESSON)
    learner_copy(tmp_path / "class" / "ada", RIGHT_BODY, widget_option="Design")  # the template: left out of a class
    shutil.copyfile(exercises / LESSON, tmp_path / "class" / "bob" / "my notes.ipynb")  # no solution has its name: left out
    graded = subprocess.run([COMMAND, "grade", str(tmp_path / "class"), "--solutions", str(solutions), "--output", str(tmp_path / "grades"),
                             "--timeout", "30"], capture_output=True, text=True)
    assert graded.returncode == 1, graded.stdout + graded.stderr
    assert f"left out (not an exercise notebook of the course): ada/{TEMPLATE}, bob/my notes.ipynb" in graded.stdout, graded.stdout
    assert sorted(path.name for path in (tmp_path / "grades").rglob("*.json")) == ["01_phases_practice.scorecard.json"] * 3
    table = list(csv.DictReader((tmp_path / "grades" / "class.csv").open()))
    points = {(row["learner"], row["exercise"]): (row["points"], row["visible"], row["hidden"]) for row in table}
    assert points == {("ada", QUIZ): ("1", "passed", "none"), ("ada", CODE): ("2", "passed", "passed"),
                      ("bob", QUIZ): ("0", "failed", "none"), ("bob", CODE): ("0", "passed", "failed"),
                      ("cy", QUIZ): ("0", "failed", "none"), ("cy", CODE): ("2", "passed", "passed")}
    scorecard = json.loads((tmp_path / "grades" / "ada" / "01_phases_practice.scorecard.json").read_text())
    assert scorecard["points"] == scorecard["max_points"] == 3
    assert f"| {CODE} | 0 / 2 | passed | failed |" in (tmp_path / "grades" / "bob" / "01_phases_practice.scorecard.md").read_text()
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
    solution = nbformat.read(SOLUTIONS / "01_the_lifecycle_practice.ipynb", as_version=4)
    path = tmp_path / "01_the_lifecycle_practice.ipynb"
    nbformat.write(CHEATS[cheat](solution, assign_notebook(solution)), path)
    assert set(own_run_verdicts(path).values()) == {True}, "plain nbval is fooled"
    path.with_name("01_the_lifecycle_practice.answers.json").unlink(missing_ok=True)
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


# --- Nothing lost, nothing silent: assign, grade, validate and seal with a careless user's input --------------------------

def digests(folder: Path) -> dict:
    "Relative path -> sha256 of the bytes, for every file under `folder` (symbolic links to folders are not followed)"
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file() and not path.is_symlink()}


def run_main(argv: list, capsys) -> tuple:
    "Run `mlops-kit ARGV` in this process: (exit code, stdout, stderr)"
    from mlops_kit.cli import main
    try: code = main([str(argument) for argument in argv])
    except SystemExit as stop: code = stop.code  # argparse's own errors
    printed = capsys.readouterr()
    return code, printed.out, printed.err


@pytest.fixture
def course(tmp_path) -> Path:
    "A folder with a copy of two solution notebooks and their exercises, as `mlops-kit assign` makes them"
    (tmp_path / "solutions").mkdir()
    for name in (TEMPLATE, "01_the_lifecycle_practice.ipynb"): shutil.copyfile(SOLUTIONS / name, tmp_path / "solutions" / name)
    assign(tmp_path / "solutions", tmp_path / "exercises")
    return tmp_path


def edit_answer(path: Path, source: str = "def phase_of(task):\n    return 'design'"):
    "A learner's edit: the first answer cell's source replaced, the notebook saved"
    notebook = nbformat.read(path, as_version=4)
    next(cell for cell in notebook.cells if meta(cell).get("role") == "answer").source = source
    nbformat.write(notebook, path)


@pytest.mark.parametrize("target", ["solutions", "./solutions", "solutions/", "solutions/../solutions", "linked", "solutions/inner", "."])
def test_assign_refuses_the_solutions_folder_under_any_spelling(course, capsys, monkeypatch, target):
    monkeypatch.chdir(course)
    (course / "linked").symlink_to(course / "solutions")
    before = digests(course)
    code, out, err = run_main(["assign", "solutions", target], capsys)
    assert code == 2 and "Traceback" not in err and "error:" in err and "solutions" in err, err
    assert digests(course) == before


def test_assign_refuses_a_folder_that_holds_solution_notebooks(course, capsys):
    "The arguments swapped: the exercises taken for solutions, written over the worked answers"
    before = digests(course)
    code, _, err = run_main(["assign", course / "exercises", course / "solutions"], capsys)
    assert code == 2 and "holds solution notebooks" in err
    (course / "elsewhere").mkdir()
    shutil.copyfile(SOLUTIONS / "02_design_practice.ipynb", course / "elsewhere" / "02_design.ipynb")  # not even one assign would write
    code, _, err = run_main(["assign", course / "solutions", course / "elsewhere"], capsys)
    assert code == 2 and "holds solution notebooks" in err and "02_design.ipynb" in err
    before["elsewhere/02_design.ipynb"] = digests(course)["elsewhere/02_design.ipynb"]
    assert digests(course) == before


def test_one_unreadable_solution_notebook_means_nothing_is_written(course, capsys):
    edit_answer(course / "exercises" / TEMPLATE)  # a learner's work that a partial assign would overwrite
    (course / "solutions" / "zz_broken.ipynb").write_text('{"cells": [')
    before = digests(course)
    code, _, err = run_main(["assign", course / "solutions", course / "exercises", "--force"], capsys)
    assert code == 2 and "zz_broken.ipynb' is not a readable notebook" in err
    assert digests(course) == before
    assert not [path for path in course.rglob("*") if path.name.endswith((".tmp", ".backup"))]


def test_a_changed_exercise_is_kept_unless_force_and_then_backed_up(course, capsys):
    path = course / "exercises" / TEMPLATE
    edit_answer(path)
    learner_work = path.read_bytes()
    before = digests(course)
    code, out, err = run_main(["assign", course / "solutions", course / "exercises"], capsys)
    assert code == 2 and "changed since assign made them" in err and str(path) in err and "--force" in err
    assert "force=True" not in err, "the command names its own option"
    assert digests(course) == before
    code, out, err = run_main(["assign", course / "solutions", course / "exercises", "--force"], capsys)
    backup = path.with_name(TEMPLATE + ".backup")
    assert code == 0 and f"kept the changed {path} as {backup}" in out, out + err
    assert backup.read_bytes() == learner_work
    assert assignment_differences(course / "solutions", course / "exercises") == []
    edit_answer(path, "def phase_of(task):\n    return 'deployment'")
    assert assign(course / "solutions", course / "exercises", force=True).backups == {path: path.with_name(TEMPLATE + ".backup-2")}
    assert backup.read_bytes() == learner_work, "an earlier backup is never replaced"
    with pytest.raises(GradingError, match="force=True"):
        edit_answer(path)
        assign(course / "solutions", course / "exercises")


def test_an_exercise_run_and_saved_in_jupyter_but_unchanged_is_replaced_silently(course):
    "Jupyter's save changes outputs, execution counts and metadata: none of it is a learner's work"
    path = course / "exercises" / TEMPLATE
    notebook = nbformat.read(path, as_version=4)
    for number, cell in enumerate(cell for cell in notebook.cells if cell.cell_type == "code"):
        cell.outputs, cell.execution_count = [nbformat.v4.new_output("stream", text="ran\n")], number + 1
        cell.metadata["collapsed"] = False
    notebook.metadata["language_info"] = {"name": "python", "version": "3.11"}
    nbformat.write(notebook, path)
    done = assign(course / "solutions", course / "exercises")
    assert done.backups == {} and path in done.written
    assert assignment_differences(course / "solutions", course / "exercises") == []


def test_an_exercise_made_before_fingerprints_is_replaced_only_if_it_is_what_assign_writes(course):
    "Exercises written by an older assign carry no fingerprint: unchanged they are replaced, changed they are kept"
    path = course / "exercises" / TEMPLATE
    notebook = nbformat.read(path, as_version=4)
    del notebook.metadata["mlops_kit"]
    nbformat.write(notebook, path)
    assert assign(course / "solutions", course / "exercises").backups == {}
    notebook = nbformat.read(path, as_version=4)
    del notebook.metadata["mlops_kit"]
    nbformat.write(notebook, path)
    edit_answer(path)
    with pytest.raises(GradingError, match="changed since assign made them"):
        assign(course / "solutions", course / "exercises")


def test_an_unreadable_exercise_notebook_is_kept_as_a_learners_work(course):
    path = course / "exercises" / TEMPLATE
    path.write_text("{half a notebook")
    with pytest.raises(GradingError, match="changed since assign made them"):
        assign(course / "solutions", course / "exercises")
    assert path.read_text() == "{half a notebook"
    (course / "exercises" / "01_the_lifecycle_practice.ipynb").unlink()
    (course / "exercises" / "01_the_lifecycle_practice.ipynb").mkdir()
    with pytest.raises(GradingError, match="is not a file"):
        assign(course / "solutions", course / "exercises", force=True)
    assert path.read_text() == "{half a notebook"


def test_assign_writes_all_or_nothing_when_the_disk_fails(course, monkeypatch):
    edit_answer(course / "exercises" / TEMPLATE)
    before = digests(course)
    import mlops_kit._toolbox as toolbox  # assign stages each notebook through the toolbox's atomic write
    real_staged_file, calls = toolbox.staged_file, []
    def full_disk_on_the_second(path):
        calls.append(1)
        if len(calls) == 2: raise OSError(28, "No space left on device")
        return real_staged_file(path)
    monkeypatch.setattr(toolbox, "staged_file", full_disk_on_the_second)
    with pytest.raises(OSError, match="No space left"):
        assign(course / "solutions", course / "exercises", force=True)
    assert digests(course) == before and len(calls) == 2
    assert not [path for path in course.rglob("*") if path.name.endswith((".tmp", ".backup"))]


def test_assign_refuses_a_solution_whose_cell_metadata_it_would_misread(course):
    path = course / "solutions" / TEMPLATE
    notebook = nbformat.read(path, as_version=4)
    check_cell = next(cell for cell in notebook.cells if meta(cell).get("role") == "check")
    check_cell.metadata["mlops_kit"] = {**meta(check_cell), "points": float("nan")}
    notebook.cells[0].metadata["mlops_kit"] = ["question"]
    nbformat.write(notebook, path)
    before = digests(course)
    with pytest.raises(GradingError, match=f"cell {check_cell.id}: points must be a positive number, got nan") as raised:
        assign(course / "solutions", course / "exercises")
    assert "not a dict" in str(raised.value) and TEMPLATE in str(raised.value)
    assert digests(course) == before
    validation_rows = validate(course / "solutions", course / "exercises", timeout=30, short_timeout=5, jobs=1).rows
    broken = [row for row in validation_rows if row["notebook"] == TEMPLATE]
    assert {row["check"] for row in broken} == {"cell metadata", "assign and cheats"}, "reported, and nothing run for it"
    assert not any(row["passed"] for row in broken)


@pytest.mark.parametrize("call, message", [
    (lambda root: assign(root / "nowhere", root / "out"), "No solutions folder"),
    (lambda root: assign(root / "empty", root / "out"), "No solution notebooks under"),
    (lambda root: assign(root / "solutions", root / "notes.txt"), "is a file: give a folder"),
    (lambda root: assign(root / "solutions", root / "notes.txt" / "out"), "is a file"),
    (lambda root: assign(root / "solutions", root / "out", force="yes"), "`force` must be True or False"),
    (lambda root: assign(7, root / "out"), "`solutions` is a path"),
    (lambda root: assignment_differences(root / "solutions", root / "notes.txt"), "is a file, not a folder"),
    (lambda root: assignment_differences(root / "nowhere", root / "exercises"), "No solutions folder"),
    (lambda root: grade(root / "exercises" / TEMPLATE, root / "solutions", timeout=0), "`timeout` is a positive number"),
    (lambda root: grade(root / "exercises" / TEMPLATE, root / "solutions", timeout=float("inf")), "`timeout` is a positive number"),
    (lambda root: grade(root / "exercises" / TEMPLATE, root / "solutions", timeout="60"), "`timeout` is a number of seconds"),
    (lambda root: grade(root / "exercises", root / "solutions"), "it is a folder"),
    (lambda root: grade(root / "exercises" / TEMPLATE, root / "notes.txt"), "(it is a file)"),
    (lambda root: grade(root / "exercises" / TEMPLATE, root / "empty"), "No solution notebooks under"),
    (lambda root: grade(root / "notes.txt", root / "solutions"), "No solution notebook named 'notes.txt'"),
    (lambda root: grade(root / "exercises" / TEMPLATE, root / "solutions", include_hidden="no"), "`include_hidden` must be True or False"),
    (lambda root: grade_folder(root / "nowhere", root / "solutions"), "No folder at"),
    (lambda root: grade_folder(root / "notes.txt", root / "solutions"), "it is a file"),
    (lambda root: grade_folder(root / "empty", root / "solutions"), "No notebooks under"),
    (lambda root: grade_folder(root / "exercises", root / "solutions", timeout=-5), "`timeout` is a positive number"),
    (lambda root: validate(root / "solutions", root / "nowhere"), "No exercises folder"),
    (lambda root: validate(root / "solutions", root / "exercises", timeout=0), "`timeout` is a positive number"),
    (lambda root: validate(root / "solutions", root / "exercises", short_timeout=-1), "`short_timeout` is a positive number"),
    (lambda root: validate(root / "solutions", root / "exercises", jobs=0), "`jobs` is a number of runs"),
    (lambda root: validate(root / "solutions", root / "exercises", jobs=1.5), "`jobs` is a number of runs"),
])
def test_bad_paths_and_values_get_the_kits_error_and_change_nothing(course, call, message):
    from mlops_kit.errors import MlopsKitError
    (course / "empty").mkdir()
    (course / "notes.txt").write_text("mine")
    before = digests(course)
    with pytest.raises(MlopsKitError, match=re.escape(message)):
        call(course)
    assert digests(course) == before


def test_grade_folder_grades_the_courses_exercise_notebooks_only_each_solution_found_before_any(course, monkeypatch):
    import mlops_kit.practice.grading as grading
    graded = []
    monkeypatch.setattr(grading, "_run_nbval", lambda notebook, timeout: graded.append(notebook.name) or {})
    lesson = "01_the_lifecycle_practice.ipynb"
    (course / "class" / "ada").mkdir(parents=True)
    for name in (TEMPLATE, "homework.ipynb", lesson): shutil.copyfile(course / "exercises" / TEMPLATE, course / "class" / "ada" / name)
    shutil.copyfile(course / "exercises" / lesson, course / "class" / "ada" / lesson)
    assert [path.name for path in grading.left_out_notebooks(course / "class", course / "solutions")] == [TEMPLATE, "homework.ipynb"]
    assert [(learner, card.notebook) for learner, card in grade_folder(course / "class", course / "solutions")] == [("ada", lesson)]
    assert graded == [lesson]
    (course / "solutions" / "more").mkdir()
    shutil.copyfile(course / "solutions" / lesson, course / "solutions" / "more" / lesson)
    with pytest.raises(GradingError, match=f"Two solution notebooks are named '{lesson}'"):
        grade_folder(course / "class", course / "solutions")
    assert graded == [lesson], "refused before grading any"
    shutil.rmtree(course / "solutions" / "more")
    shutil.copyfile(course / "exercises" / lesson, course / "class" / lesson)  # learner '01_the_lifecycle_practice'...
    (course / "class" / Path(lesson).stem).mkdir()
    shutil.copyfile(course / "exercises" / lesson, course / "class" / Path(lesson).stem / lesson)  # ... and again
    with pytest.raises(GradingError, match="would both be graded as '01_the_lifecycle_practice'"):
        grade_folder(course / "class", course / "solutions")
    (course / "alone").mkdir()
    shutil.copyfile(course / "exercises" / TEMPLATE, course / "alone" / TEMPLATE)
    with pytest.raises(GradingError, match="No exercise notebook of the course"):
        grade_folder(course / "alone", course / "solutions")
    assert graded == [lesson]


def test_grade_checks_its_outputs_before_grading_and_keeps_existing_scorecards(course, capsys, monkeypatch):
    import mlops_kit.practice.grading as grading
    graded = []
    monkeypatch.setattr(grading, "_run_nbval", lambda notebook, timeout: graded.append(notebook.name) or {})
    lesson = "01_the_lifecycle_practice.ipynb"
    (course / "class" / "ada").mkdir(parents=True)
    shutil.copyfile(course / "exercises" / lesson, course / "class" / "ada" / lesson)
    (course / "grades" / "ada").mkdir(parents=True)
    (course / "grades" / "ada" / "01_the_lifecycle_practice.scorecard.json").write_text('{"points": 3}')
    (course / "grades" / "class.csv").write_text("learner,points\nada,3\n")
    (course / "notes.txt").write_text("mine")
    before = digests(course)
    command = ["grade", course / "class", "--solutions", course / "solutions", "--output", course / "grades"]
    code, out, err = run_main(command, capsys)
    assert code == 2 and "exist already" in err and "--overwrite" in err and "overwrite=True" not in err, err
    assert graded == [], "refused before grading"
    assert digests(course) == before
    code, out, err = run_main([*command[:-2], "--output", course / "notes.txt"], capsys)  # a file where a folder belongs
    assert code == 2 and "is a file" in err and graded == [] and digests(course) == before
    code, out, err = run_main(["grade", course / "exercises" / lesson, "--solutions", course / "solutions", "--output",
                               course / "grades" / "ada"], capsys)
    assert code == 2 and "01_the_lifecycle_practice.scorecard.json exists already" in err and graded == []
    code, out, err = run_main([*command, "--overwrite"], capsys)
    assert code == 1 and graded == [lesson], err  # the stub ran no cell: every exercise fails
    assert json.loads((course / "grades" / "ada" / "01_the_lifecycle_practice.scorecard.json").read_text())["points"] == 0
    assert "ada" in (course / "grades" / "class.csv").read_text()


def test_write_scorecard_refuses_to_replace_a_scorecard_unless_told(course, tmp_path):
    from mlops_kit.practice import Scorecard, write_scorecard
    card = Scorecard(TEMPLATE, [dict(exercise="x", points=1, max_points=1, passed=True, visible="passed", hidden="none", message="", seconds=0.1)])
    paths = write_scorecard(card, tmp_path / "grades")
    before = digests(tmp_path / "grades")
    with pytest.raises(GradingError, match="exists already: give another folder, or overwrite=True"):
        write_scorecard(Scorecard(TEMPLATE, []), tmp_path / "grades")
    assert digests(tmp_path / "grades") == before
    assert write_scorecard(Scorecard(TEMPLATE, []), tmp_path / "grades", overwrite=True) == paths
    assert json.loads(paths[0].read_text())["exercises"] == []
    with pytest.raises(TypeError, match="what grade\\(\\) returns"):
        write_scorecard({"points": 1}, tmp_path / "other")


def test_a_learners_own_check_cell_earns_nothing(tmp_path):
    "A learner who adds a cell that claims to be a check worth 100 points, and passes, gains nothing: only the solution's checks count"
    path = learner_copy(tmp_path / "eve", RIGHT_BODY, widget_option="Design")
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("print('free points')", metadata={"mlops_kit": {"exercise": "bonus", "role": "check", "points": 100}}))
    notebook.cells.append(nbformat.v4.new_code_cell("pass", metadata={"mlops_kit": "check"}))
    nbformat.write(notebook, path)
    card = grade(path, SOLUTIONS, timeout=30)
    assert (card.points, card.max_points) == (3, 3) and "bonus" not in rows(card)


BAD_PRACTICE_COMMANDS = [
    ["assign", "solutions", "solutions"], ["assign", "nowhere", "out"], ["assign", "solutions", "README.md"],
    ["assign", "solutions", "out", "--check", "--force"], ["assign", "solutions"], ["assign", "solutions", "out", "--bogus"],
    ["grade", "nowhere"], ["grade", "exercises", "--timeout", "0"], ["grade", "exercises", "--timeout", "-1"],
    ["grade", "exercises", "--timeout", "nan"], ["grade", "exercises", "--timeout", "soon"], ["grade", "README.md"],
    ["grade", "exercises", "--solutions", "README.md"], ["grade", "exercises", "--solutions", "nowhere"],
    ["grade", "exercises", "--output", "README.md"], ["grade"],
    ["validate", "--timeout", "0"], ["validate", "--short-timeout", "-3"], ["validate", "--timeout", "inf"], ["validate", "--jobs", "0"],
    ["validate", "--jobs", "many"], ["validate", "--solutions", "nowhere"], ["validate", "--solutions", "README.md"],
    ["validate", "--exercises", "nowhere"],
    ["seal", "first-phase", "NaN"], ["seal", "first-phase", "Infinity"], ["seal", "first-phase", "-Infinity"], ["seal", "first-phase", "1e999"],
    ["seal", "first-phase", "Design"], ["seal", "first-phase", "[1, 2"], ["seal", "first-phase", ""], ["seal", "", '"Design"'],
    ["seal", "first phase", '"Design"'], ["seal", "first\tphase", '"Design"'], ["seal", "first-phase", "[" * 5000 + "]" * 5000],
    ["seal", "first-phase", "[" * 950 + "]" * 950], ["seal", "first-phase", "9" * 5000], ["seal", "first-phase"],
]


@pytest.mark.parametrize("argv", BAD_PRACTICE_COMMANDS, ids=lambda argv: " ".join(argv)[:60])
def test_practice_commands_with_bad_arguments_exit_2_without_a_traceback(argv, capsys, monkeypatch):
    "In the repository (a README.md file, solutions/ and exercises/ folders): each mistake gets one line and exit code 2"
    import mlops_kit.practice.grading as grading
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setattr(grading, "_run_nbval", lambda *args: pytest.fail("a mistake must be found before anything runs"))
    before = digests(REPO_ROOT / "solutions"), digests(REPO_ROOT / "exercises")
    code, out, err = run_main(argv, capsys)
    assert code == 2, (out, err)
    assert "Traceback" not in out + err and "error:" in err
    if argv[0] == "seal": assert "The answer to" not in err and ("ANSWER" in err or "EXERCISE" in err or "required" in err), err
    assert (digests(REPO_ROOT / "solutions"), digests(REPO_ROOT / "exercises")) == before
    assert not (REPO_ROOT / "out").exists()


def test_a_practice_mistake_shows_no_traceback_from_the_installed_command(tmp_path):
    "The same, as a learner runs it: the installed `mlops-kit` in a terminal"
    for argv in (["seal", "first-phase", "NaN"], ["assign", str(SOLUTIONS), str(SOLUTIONS)], ["grade", str(tmp_path / "nowhere")]):
        result = subprocess.run([COMMAND, *argv], capture_output=True, text=True)
        assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_the_guard_rebinds_every_alias_of_the_practice_modules():
    "A learner's notebook may import the practice package or its modules under any name: the guard points each at the fresh module"
    from mlops_kit.practice.grading import _guard_source
    learner = ("import mlops_kit.practice as pr, mlops_kit.practice.widgets as ex, mlops_kit.practice.answer_store as st\n"
               "from mlops_kit.practice import check\n"
               "stale = (pr, ex, st, check)\n")
    after = ("import sys\n"
             "fresh = tuple(sys.modules[name] for name in ('mlops_kit.practice', 'mlops_kit.practice.widgets', 'mlops_kit.practice.answer_store'))\n"
             "assert (pr, ex, st) == fresh, 'an alias still names the old module'\n"
             "assert all(new is not old for new, old in zip(fresh, stale)), 'the modules were not imported afresh'\n"
             "assert check is fresh[1].check and check is not stale[3], 'check was not rebound'\n"
             "print('rebound')\n")
    result = subprocess.run([sys.executable, "-c", learner + _guard_source("double", {}) + "\n" + after],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "rebound" in result.stdout, result.stderr[-2000:]


def test_assign_grade_and_validate_refuse_a_solution_with_no_exercise(tmp_path, capsys):
    "A notebook put among the solutions with no cell marked as a check: each command says so, and writes nothing"
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), solutions / "notes.ipynb")
    code, out, err = run_main(["assign", str(solutions), str(tmp_path / "exercises")], capsys)
    assert code == 2 and "notes.ipynb has no exercise" in err and "role 'check'" in err, err
    assert not (tmp_path / "exercises").exists()
    code, out, err = run_main(["grade", str(solutions / "notes.ipynb"), "--solutions", str(solutions)], capsys)
    assert code == 2 and "notes.ipynb has no exercise" in err, err
    problems = {row["check"]: row["detail"] for row in validate(solutions, solutions, jobs=1).problems}
    assert "it has no exercise" in problems["cell metadata"], problems
