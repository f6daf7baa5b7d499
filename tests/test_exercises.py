"""The widget exercises, driven from Python as a learner drives them in the browser.

What it proves: every kind of question gives feedback on Check, climbs its hint ladder one hint per wrong try, saves
each change of the answer at once and comes back with it (and its tries) when made again from the same answer file;
its check refuses a missing, wrong or always-equal answer; a question never holds its answer in plain text; code
exercises count their tries and say that hidden checks run only at grading; bad arguments and bad answers get a clear
error. `expect`'s strictness and what becomes of a saved answer that no longer fits are tested in the widgets notebook.
"""
import json, re
from pathlib import Path

import pytest

from conftest import REPO_ROOT

from mlops_kit.design import DESIGN_ITEMS
from mlops_kit.practice import (AnswerStore, CheckFailed, CodeExercise, GateDecision, Matching, MultipleChoice, NumberAnswer,
                                 Ordering, ThresholdSlider, check, checking, expect, seal, seal_parts)

HINTS = ["first hint", "second hint", "third hint"]
STEPS = ["Deploy", "Design", "Monitor", "Develop"]
RIGHT_STEPS = ["Design", "Develop", "Deploy", "Monitor"]
SCORES = {"2025-01": 0.02, "2025-02": 0.30, "2025-03": 0.05, "2025-04": 0.55}


@pytest.fixture
def answers(tmp_path) -> AnswerStore:
    return AnswerStore(tmp_path / "lesson.answers.json")


# One of each kind of question: (make it, a wrong answer, the right answer), made from the same answer file each time.
QUESTIONS = {
    "one choice": (lambda store: MultipleChoice("q-one", "Which?", ["a", "b", "c"], seal("q-one", "b"), HINTS, store), "a", "b"),
    "several choices": (lambda store: MultipleChoice("q-several", "Which?", ["a", "b", "c"], seal("q-several", ["a", "c"]), HINTS, store,
                                                     several=True), ["a"], ["a", "c"]),
    "gate decision": (lambda store: GateDecision("q-gate", "No baseline yet.", DESIGN_ITEMS[:3], seal("q-gate", [DESIGN_ITEMS[1].text]),
                                                 HINTS, store), ["Nothing blocks the gate"], [DESIGN_ITEMS[1].text]),
    "ordering": (lambda store: Ordering("q-order", "Order them.", STEPS, seal("q-order", RIGHT_STEPS), HINTS, store),
                 STEPS, RIGHT_STEPS),
    "matching": (lambda store: Matching("q-match", "Match.", ["x", "y"], ["A", "B"], seal("q-match", {"x": "B", "y": "A"}), HINTS, store),
                 {"x": "A", "y": "A"}, {"x": "B", "y": "A"}),
    "threshold": (lambda store: ThresholdSlider("q-threshold", "Alert on the drifting months.", SCORES,
                                                seal("q-threshold", ["2025-02", "2025-04"]), HINTS, store), 0.04, 0.2),
    "number": (lambda store: NumberAnswer("q-number", "How much?", seal("q-number", 32.5), HINTS, store, decimals=1), 31.0, 32.46),
}


@pytest.mark.parametrize("kind", QUESTIONS)
def test_check_gives_feedback_and_climbs_the_hint_ladder(kind, answers):
    make, wrong, right = QUESTIONS[kind]
    question = make(answers)
    question.check_button.click()
    assert "No answer yet" in question.feedback.value and question.tries == 0
    with pytest.raises(CheckFailed, match="no answer yet.*Hint 1 of 3: first hint"):
        check(question)
    question.answer = wrong
    for tries in (1, 2, 3, 4):
        question.check_button.click()
        assert question.feedback.value.count("Hint") == min(tries, 3) and "Not yet" in question.feedback.value
    with pytest.raises(CheckFailed, match="Hint 3 of 3: third hint"):
        check(question)
    question.answer = right
    question.check_button.click()
    assert "Correct" in question.feedback.value and question.correct
    check(question)


@pytest.mark.parametrize("kind", QUESTIONS)
def test_every_change_is_saved_and_comes_back_with_its_tries(kind, answers):
    make, wrong, right = QUESTIONS[kind]
    question = make(answers)
    question.answer = wrong
    question.check_button.click()
    question.answer = right
    saved = json.loads(answers.path.read_text())["answers"][question.exercise]
    assert saved["tries"] == 1 and saved["answer"] is not None
    again = make(AnswerStore(answers.path))  # a new kernel, the same answer file
    assert again.answer == question.answer and again.tries == 1 and again.correct


def test_changes_made_in_the_widget_itself_are_saved(answers):
    "What the browser does: it sets the input widget's value, not the question's answer"
    question = MultipleChoice("q-one", "Which?", ["a", "b"], seal("q-one", "b"), store=answers)
    question.input.value = "b"
    assert answers.get("q-one") == {"answer": "b", "tries": 0}
    order = Ordering("q-order", "Order them.", STEPS, seal("q-order", RIGHT_STEPS), store=answers)
    order.move(order.shown[-1], -1)
    assert answers.get("q-order")["answer"] == order.shown
    slider = ThresholdSlider("q-threshold", "?", SCORES, seal("q-threshold", ["2025-04"]), store=answers)
    slider.input.children[0].value = 0.4
    assert answers.get("q-threshold")["answer"] == pytest.approx(0.4, abs=0.01)
    assert slider.alerting(0.4) == ["2025-04"] and slider.correct
    assert slider.plot_title == "1 of 4 windows alert at 0.400", "the live plot is redrawn"


@pytest.mark.parametrize("kind", QUESTIONS)
def test_a_question_holds_no_plain_answer_and_refuses_an_always_equal_one(kind, answers):
    make, wrong, right = QUESTIONS[kind]
    question = make(answers)
    assert question.seal.startswith("sha256:") and json.dumps(right) not in question.seal

    class EqualsEverything:
        def __eq__(self, other): return True
    type(question).answer = property(lambda self: EqualsEverything())  # a patched class, as a cheat would
    try:
        with pytest.raises(CheckFailed, match="is a EqualsEverything"):
            check(question)
    finally:
        del type(question).answer  # the class attribute set above shadows nothing: restore the base class's property
        assert type(question).answer is not None


def test_ordering_refuses_to_list_the_items_in_the_right_order():
    with pytest.raises(ValueError, match="listed in the right order"):
        Ordering("q-order", "Order them.", RIGHT_STEPS, seal("q-order", RIGHT_STEPS))


def test_code_exercises_count_tries_and_say_hidden_checks_run_only_at_grading(answers, capsys):
    exercise = CodeExercise("q-code", "Write double(x).", hints=HINTS[:2], store=answers)

    def run_checks(double, hidden=False):
        with checking(exercise, hidden=hidden):
            expect(double(2), 4, "double(2)")
    with pytest.raises(CheckFailed, match=r"q-code: a check failed: double\(2\): the result is 5, expected 4. Hint 1 of 2"):
        run_checks(lambda x: 5)
    with pytest.raises(CheckFailed, match="Hint 2 of 2: second hint"):
        run_checks(lambda x: 5)
    with pytest.raises(CheckFailed, match="a hidden check failed"):
        run_checks(lambda x: 5, hidden=True)
    run_checks(lambda x: 2 * x)
    assert "Hidden checks run only when the notebook is graded" in capsys.readouterr().out
    assert answers.get("q-code") == {"answer": None, "tries": 3, "passed": True}
    assert CodeExercise("q-code", "Write double(x).", store=AnswerStore(answers.path)).tries == 3
    no_hidden = CodeExercise("q-plain", "Write it.", hidden_checks=False)
    with checking(no_hidden):
        expect("x", "x")
    assert "no hidden checks" in capsys.readouterr().out


def test_bad_arguments_and_answers_get_a_clear_error(answers, tmp_path):
    sealed = seal("q", "a")
    with pytest.raises(ValueError, match="never the answer itself"):
        MultipleChoice("q", "Which?", ["a", "b"], seal="a")
    with pytest.raises(ValueError, match="exercise id is short text without spaces"):
        MultipleChoice("two words", "Which?", ["a", "b"], sealed)
    with pytest.raises(ValueError, match="at least two options"):
        MultipleChoice("q", "Which?", ["a"], sealed)
    with pytest.raises(ValueError, match="must be distinct"):
        MultipleChoice("q", "Which?", ["a", "a"], sealed)
    with pytest.raises(TypeError, match="AnswerStore"):
        MultipleChoice("q", "Which?", ["a", "b"], sealed, store="answers.json")
    with pytest.raises(ValueError, match="every score is a finite number; got nan"):
        ThresholdSlider("q", "?", {"2025-01": float("nan"), "2025-02": 0.1}, sealed)
    with pytest.raises(ValueError, match="at least two windows"):
        ThresholdSlider("q", "?", {"2025-01": 0.1}, sealed)
    with pytest.raises(ValueError, match="decimals"):
        NumberAnswer("q", "?", sealed, decimals=-1)
    question = MultipleChoice("q", "Which?", ["a", "b"], sealed, store=answers)
    with pytest.raises(ValueError, match="'c' is not one of the options"):
        question.answer = "c"
    with pytest.raises(ValueError, match="cannot go with"):
        GateDecision("q-gate", "?", ["x", "y"], sealed).answer = ["x", "Nothing blocks the gate"]
    with pytest.raises(ValueError, match="once"):
        Ordering("q-order", "?", STEPS, seal("q-order", RIGHT_STEPS)).answer = STEPS[:2]
    with pytest.raises(ValueError, match="not among the choices"):
        Matching("q-match", "?", ["x"], ["A", "B"], sealed).answer = {"x": "C"}
    with pytest.raises(ValueError, match="outside the slider's range"):
        ThresholdSlider("q-t", "?", SCORES, sealed).answer = 10.0
    with pytest.raises(TypeError, match="finite number"):
        NumberAnswer("q-n", "?", sealed).answer = "32"
    assert answers.get("q") is None, "a refused answer is not saved"
    with pytest.raises(CheckFailed, match="give a finite number"):
        seal("q", float("inf"))


SEALED = seal("q", "a")


@pytest.mark.parametrize("make, error, message", [
    (lambda: MultipleChoice("q", 42, ["a", "b"], SEALED), TypeError, "the question is text"),
    (lambda: MultipleChoice("q", "  ", ["a", "b"], SEALED), ValueError, "the question is non-empty text"),
    (lambda: MultipleChoice("q", "Which?", ["a", "b"], SEALED + "0"), ValueError, "never the answer itself"),
    (lambda: MultipleChoice("q", "Which?", ["a", "b"], "sha256:" + "z" * 64), ValueError, "never the answer itself"),
    (lambda: MultipleChoice("q", "Which?", ["a", "b"], SEALED, several="yes"), TypeError, "`several` must be True or False"),
    (lambda: MultipleChoice("q\x00", "Which?", ["a", "b"], SEALED), ValueError, "exercise id"),
    (lambda: MultipleChoice(["q"], "Which?", ["a", "b"], SEALED), TypeError, "exercise id"),
    (lambda: MultipleChoice("q", "Which?", "ab", SEALED), TypeError, "options are a list of texts"),
    (lambda: MultipleChoice("q", "Which?", ["a", "b"], SEALED, hints=[1]), ValueError, "hints are non-empty texts"),
    (lambda: GateDecision("q", "No baseline.", "A baseline", SEALED), TypeError, "`items` are a list"),
    (lambda: GateDecision("q", "No baseline.", 3, SEALED), TypeError, "`items` are a list"),
    (lambda: GateDecision("q", None, ["x", "y"], SEALED), TypeError, "the scenario is text"),
    (lambda: GateDecision("q", "No baseline.", ["x", "Nothing blocks the gate"], SEALED), ValueError, "must be distinct"),
    (lambda: Ordering("q", "Order.", ["only"], SEALED), ValueError, "at least two items"),
    (lambda: Matching("q", "Match.", [], ["A", "B"], SEALED), ValueError, "at least one item and two choices"),
    (lambda: Matching("q", "Match.", ["x"], ["A"], SEALED), ValueError, "at least one item and two choices"),
    (lambda: ThresholdSlider("q", "?", [0.1, 0.2], SEALED), TypeError, "maps windows to scores"),
    (lambda: ThresholdSlider("q", "?", {"a": "0.1", "b": 0.2}, SEALED), ValueError, "finite number; got '0.1'"),
    (lambda: ThresholdSlider("q", "?", {"a": True, "b": 0.2}, SEALED), ValueError, "finite number; got True"),
    (lambda: ThresholdSlider("q", "?", {"a": 1e308, "b": 0.2}, SEALED), ValueError, "finite number"),
    (lambda: ThresholdSlider("q", "?", {1: 0.1, "1": 0.2}, SEALED), ValueError, "the same label"),
    (lambda: ThresholdSlider("q", "?", SCORES, SEALED, score_name=None), TypeError, "`score_name` is text"),
    (lambda: NumberAnswer("q", "?", SEALED, decimals=1.5), ValueError, "`decimals` is a whole number"),
    (lambda: CodeExercise("q", None), TypeError, "the question is text"),
    (lambda: CodeExercise("q", "Write it.", hidden_checks=1), TypeError, "`hidden_checks` must be True or False"),
])
def test_a_question_built_with_a_bad_argument_gets_the_kits_error(make, error, message):
    "A careless author's arguments: the kit's error (never one from ipywidgets, html or float()), naming what was wrong"
    from mlops_kit.errors import MlopsKitError
    with pytest.raises(MlopsKitError, match=message) as raised:
        make()
    assert isinstance(raised.value, error)


def test_check_and_checking_refuse_what_they_cannot_check_and_lose_no_saved_answer(answers):
    question = MultipleChoice("q-one", "Which?", ["a", "b"], seal("q-one", "b"), store=answers)
    question.answer = "b"
    saved = answers.path.read_bytes()
    with pytest.raises(TypeError, match="is a widget question"):
        with checking(question):
            pass
    assert answers.path.read_bytes() == saved, "counting a try would have saved answer=None over the widget's answer"
    with pytest.raises(TypeError, match="takes a widget question"):
        check(CodeExercise("q-code", "Write it."))
    with pytest.raises(TypeError, match="takes a widget question"):
        check("q-one")
    with pytest.raises(TypeError, match="takes the exercise's CodeExercise"):
        with checking(None):
            pass


EXERCISE_NOTEBOOKS = sorted(path.name for path in (REPO_ROOT / "exercises").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", EXERCISE_NOTEBOOKS)
def test_a_blank_exercise_notebook_fails_each_check_with_a_short_message(notebook, tmp_path):
    "A real kernel runs the learner's untouched notebook: each check cell fails in at most 3 lines, naming its exercise and the next step"
    import shutil
    import nbformat
    from nbclient import NotebookClient
    path = Path(shutil.copyfile(REPO_ROOT / "exercises" / notebook, tmp_path / notebook))
    cells = nbformat.read(path, as_version=4).cells
    NotebookClient(nbformat.v4.new_notebook(cells=cells), timeout=120, allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    checks = [cell for cell in cells if cell.metadata.get("mlops_kit", {}).get("role") == "check" and cell.source.strip()
              and not cell.source.lstrip().startswith("#")]
    assert checks, "every exercise notebook has visible check cells"
    errors = [output for cell in cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert len(errors) == len(checks), "each visible check cell fails, and nothing else does"
    for cell in checks:
        (error,) = [output for output in cell.outputs if output.output_type == "error"]
        text = "\n".join(error.traceback)
        assert error.ename == "CheckFailed" and 1 <= len(error.traceback) <= 3 and len(text.splitlines()) <= 3, text
        assert "Traceback" not in text and ".py" not in text, text
        assert cell.metadata["mlops_kit"]["exercise"] in error.traceback[0], text
        assert "run this cell again" in text or "run this check cell again" in text, text


TASKS, PHASES = ["metric", "tuning", "drift", "labels"], ["Design", "Development", "Deployment"]
RIGHT_PAIRS = {"metric": "Design", "tuning": "Development", "drift": "Deployment", "labels": "Deployment"}
PARTS = {  # a question made of parts, its right answer by part, and an answer with some parts right and how it is said
    "matching": (lambda: Matching("q-pairs", "Match.", TASKS, PHASES, seal("q-pairs", RIGHT_PAIRS), HINTS,
                                  parts=seal_parts("q-pairs", RIGHT_PAIRS)),
                 RIGHT_PAIRS, {**RIGHT_PAIRS, "metric": "Deployment"}, "3 of 4 pairs are right."),
    "ordering": (lambda: Ordering("q-steps", "Order.", STEPS, seal("q-steps", RIGHT_STEPS), HINTS, parts=seal_parts("q-steps", RIGHT_STEPS)),
                 RIGHT_STEPS, ["Develop", "Design", "Monitor", "Deploy"], "0 of 4 items are in their right place."),
    "several": (lambda: MultipleChoice("q-ticks", "Which?", ["a", "b", "c", "d"], seal("q-ticks", ["a", "c"]), HINTS, several=True,
                                       parts=seal_parts("q-ticks", {"a": True, "b": False, "c": True, "d": False})),
                {"a": True, "b": False, "c": True, "d": False}, ["a", "b"], "2 of 4 options are right (ticked or left blank)."),
}


@pytest.mark.parametrize("kind", PARTS)
def test_partial_feedback_says_how_many_parts_are_right_and_no_part_can_be_read(kind):
    "The count is said; the widget's whole state (what a saved notebook keeps) and its attributes hold no part of the answer"
    from ipywidgets.embed import embed_data
    make, right_parts, partly_right, said = PARTS[kind]
    question = make()
    question.answer = partly_right
    assert not question.check_now() and said in question.feedback.value
    with pytest.raises(CheckFailed, match=re.escape(said)):
        check(question)
    fresh = make()  # what the learner's notebook holds before any answer
    state = json.dumps(embed_data(views=[fresh])["manager_state"]) + json.dumps({name: repr(value) for name, value in vars(fresh).items()})
    pairs = right_parts.items() if isinstance(right_parts, dict) else enumerate(right_parts)
    for key, value in pairs:
        for shown in (json.dumps([key, value]), json.dumps({key: value})[1:-1], json.dumps(["part", key, value]), repr({key: value})[1:-1]):
            assert shown not in state, f"{shown} can be read out of the widget"
    assert sorted(question.parts) == question.parts and all(part.startswith("sha256:") for part in question.parts)
