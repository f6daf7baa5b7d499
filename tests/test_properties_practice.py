"""Property-based tests (hypothesis) of what the practice part reads from a user: sealed answers, the `seal` command's
arguments, answer files, and the notebooks `assign` converts.

What it proves, for any input drawn (mostly valid, with one thing wrong): it is read, or refused with the kit's
documented error (`MlopsKitError`: `CheckFailed` for a value that cannot be sealed, `AnswerStoreError` for an answer
file, `GradingError` for a notebook), never with an error from Python or a dependency; and a refusal changes no file,
byte for byte. The `seal` command exits with 0 or 2, never with a traceback.
"""
import contextlib, copy, hashlib, io, json, re, tempfile
from pathlib import Path

import nbformat
from hypothesis import HealthCheck, event, given, settings, strategies as st

from conftest import REPO_ROOT
from mlops_kit.cli import main
from mlops_kit.errors import MlopsKitError
from mlops_kit.practice import (AnswerStore, AnswerStoreError, Matching, MultipleChoice, NumberAnswer, Ordering, 
                                 ThresholdSlider, seal)
from mlops_kit.practice import GradingError, SOLUTION_BEGIN, SOLUTION_END, HIDDEN_BEGIN, HIDDEN_END, assign, assignment_differences

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SEAL = re.compile(r"sha256:[0-9a-f]{64}")
TEMPLATE = REPO_ROOT / "solutions" / "00_template.ipynb"

# Values: plain JSON data, now and then with one value that is not (a NaN, a set, bytes, an object, a tuple, a huge number)
json_leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
json_values = st.recursive(json_leaves, lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
                           max_leaves=16)
odd_leaves = (st.sampled_from([float("nan"), float("inf"), -float("inf"), {1, 2}, b"bytes", object(), (1, "a"), "\ud800"])
              | st.builds(lambda: 10 ** 5000))  # built, not listed: hypothesis cannot print a number of 5000 digits
values = st.recursive(json_leaves | odd_leaves, lambda children: st.lists(children, max_size=4) | st.tuples(children, children)
                      | st.dictionaries(st.text(max_size=6) | st.integers(), children, max_size=3), max_leaves=12)
exercise_ids = st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True) | st.text(max_size=8) | st.sampled_from(["", " ", "a b", "a\nb", "q\x00"])


def digests(folder: Path) -> dict:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.rglob("*")) if path.is_file()}


@SETTINGS
@given(exercise=exercise_ids, answer=values)
def test_seal_seals_plain_data_or_raises_the_kits_error(exercise, answer):
    try: sealed = seal(exercise, answer)
    except MlopsKitError: return  # CheckFailed for the answer, MlopsKitError for the id: both documented
    assert SEAL.fullmatch(sealed) and seal(exercise, answer) == sealed


@SETTINGS
@given(exercise=st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True), answer=json_values)
def test_seal_seals_every_json_value_as_the_command_does(exercise, answer):
    "Any JSON value seals, and the command given the same value as JSON prints the same seal"
    sealed = seal(exercise, answer)
    code, out, err = run_command(["seal", "--", exercise, json.dumps(answer)])  # "--": an ANSWER like -1e+16 is not an option
    assert (code, out.strip()) == (0, sealed), err


MUTATIONS = ["NaN", "Infinity", "-Infinity", "1e999", ",", "]", "[", "}", '"', "\\", "\\ud800", "9" * 5000, "[" * 3000, "true"]


@st.composite
def answer_texts(draw) -> str:
    "An ANSWER argument: JSON, or JSON with one thing wrong, or any text"
    text = json.dumps(draw(json_values))
    kind = draw(st.sampled_from(["json", "cut", "insert", "text"]))
    if kind == "cut": text = text[:draw(st.integers(0, len(text)))]
    if kind == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(MUTATIONS)) + text[at:]
    if kind == "text": text = draw(st.text(max_size=20))
    return text


def run_command(argv: list) -> tuple:
    "`mlops-kit ARGV` in this process: (exit code, stdout, stderr)"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: code = main(argv)
        except SystemExit as stop: code = stop.code  # argparse's errors, e.g. an ANSWER that looks like an option
    return code, out.getvalue(), err.getvalue()


@SETTINGS
@given(exercise=exercise_ids, text=answer_texts())
def test_the_seal_command_prints_a_seal_or_one_line_of_error(exercise, text):
    code, out, err = run_command(["seal", exercise, text])
    assert code in (0, 2) and "Traceback" not in err, err
    if code == 0: assert SEAL.fullmatch(out.strip()) and out.strip() == seal(exercise, json.loads(text))
    else: assert "error:" in err and "The answer to" not in err


@st.composite
def answer_files(draw) -> bytes:
    "The bytes of an answer file: a valid one, one with one thing wrong, or any bytes"
    answers = draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3))
    if draw(st.booleans()):  # the question's own saved answer, often in the form a widget saves
        answers["q"] = draw(st.fixed_dictionaries({"answer": json_values, "tries": json_values}) | json_values)
    document = {"format": "mlops-kit answers", "version": 1, "answers": answers}
    wrong = draw(st.sampled_from(["nothing", "format", "answers", "no format", "not a dict", "truncated", "nan", "latin-1", "bytes", "deep"]))
    if wrong == "format": document["format"] = draw(json_values)
    if wrong == "answers": document["answers"] = draw(json_values)
    if wrong == "no format": del document["format"]
    if wrong == "not a dict": document = draw(json_values)
    text = json.dumps(document)
    if wrong == "truncated": text = text[:draw(st.integers(0, len(text) - 1))]
    if wrong == "nan": text = text.replace('"version": 1', '"version": NaN')
    if wrong == "deep": text = "[" * 5000 + "]" * 5000
    if wrong == "bytes": return draw(st.binary(max_size=40))
    return text.encode("latin-1", "replace") + (b"\xe9" if wrong == "latin-1" else b"")


QUESTIONS = [lambda store: MultipleChoice("q", "Which?", ["a", "b"], seal("q", "a"), store=store),
             lambda store: MultipleChoice("q", "Which?", ["a", "b", "c"], seal("q", ["a"]), store=store, several=True),
             lambda store: Ordering("q", "Order.", ["b", "a"], seal("q", ["a", "b"]), store=store),
             lambda store: Matching("q", "Match.", ["x", "y"], ["A", "B"], seal("q", {"x": "A", "y": "B"}), store=store),
             lambda store: NumberAnswer("q", "How much?", seal("q", 1.0), store=store),
             lambda store: ThresholdSlider("q", "Which alert?", {"w1": 0.1, "w2": 0.5}, seal("q", ["w2"]), store=store)]


@SETTINGS
@given(content=answer_files(), make=st.sampled_from(QUESTIONS))
def test_an_answer_file_is_read_or_reported_and_kept_byte_for_byte(content, make):
    "Any content: the store reads it, or raises AnswerStoreError; a question made on it comes back or says why; the file is unchanged"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lesson.answers.json"
        path.write_bytes(content)
        try:
            store = AnswerStore(path)
            event("read")
            assert isinstance(store.all(), dict)
            question = make(store)  # a saved answer that does not fit is reported in the feedback, not raised
            assert question.answer is None or question.correct in (True, False)
        except AnswerStoreError: pass
        assert path.read_bytes() == content


BASE = json.loads(TEMPLATE.read_text())


@st.composite
def solution_files(draw) -> bytes:
    "A solution notebook's file: the template with one thing changed (metadata, markers, cell structure), or any bytes"
    notebook = copy.deepcopy(BASE)
    cell = draw(st.sampled_from(notebook["cells"]))
    change = draw(st.sampled_from(["nothing", "cell metadata", "one key", "marker", "cell type", "source", "notebook metadata",
                                   "no cells", "truncated", "bytes", "id"]))
    if change == "cell metadata": cell["metadata"]["mlops_kit"] = draw(json_values)
    if change == "one key":
        meta = cell["metadata"].setdefault("mlops_kit", {"exercise": "template-first-phase", "role": "answer"})
        meta[draw(st.sampled_from(["exercise", "role", "kind", "points", "hidden"]))] = draw(json_values)
    if change == "marker":
        lines = "".join(cell["source"]).split("\n")
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from([SOLUTION_BEGIN, SOLUTION_END, HIDDEN_BEGIN, HIDDEN_END])))
        cell["source"] = "\n".join(lines)
    if change == "cell type": cell["cell_type"] = draw(st.sampled_from(["raw", "markdown", "code", "widget", 3]))
    if change == "source": cell["source"] = draw(json_values)
    if change == "notebook metadata": notebook["metadata"]["mlops_kit"] = draw(json_values)
    if change == "no cells": notebook["cells"] = draw(st.sampled_from([[], None, {}, "cells"]))
    if change == "id": cell["id"] = draw(st.sampled_from(["", "has space", notebook["cells"][0].get("id"), None, 7]))
    text = json.dumps(notebook)
    if change == "truncated": text = text[:draw(st.integers(0, len(text) - 1))]
    return draw(st.binary(max_size=60)) if change == "bytes" else text.encode()


@SETTINGS
@given(content=solution_files(), exercises=st.sampled_from(["none", "assigned", "edited", "file in the way"]), force=st.booleans())
def test_assign_converts_any_notebook_or_refuses_and_writes_nothing(content, exercises, force):
    "A good solution beside the drawn one: a refused assign writes neither (all or nothing); a done one is in sync"
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "solutions").mkdir()
        (root / "solutions" / "00_template.ipynb").write_bytes(TEMPLATE.read_bytes())
        (root / "solutions" / "zz_drawn.ipynb").write_bytes(content)
        if exercises != "none":
            (root / "exercises").mkdir()
            assign_template_only(root)
        if exercises == "edited": edit_first_answer(root / "exercises" / "00_template.ipynb")
        if exercises == "file in the way": (root / "exercises" / "zz_drawn.ipynb").write_text("a learner's own notes")
        before = digests(root)
        try: done = assign(root / "solutions", root / "exercises", force=force)
        except GradingError as error:
            event("refused: " + re.sub(r"'[^']*'|cell [\w-]+", "_", str(error))[:50])
            assert digests(root) == before
            return
        event("assigned" + (" with a backup" if done.backups else ""))
        assert len(done.written) == 2 and assignment_differences(root / "solutions", root / "exercises") == []
        for replaced, backup in done.backups.items(): assert hashlib.sha256(backup.read_bytes()).hexdigest() == before[str(replaced.relative_to(root))]


def assign_template_only(root: Path):
    (root / "only").mkdir()
    (root / "only" / "00_template.ipynb").write_bytes(TEMPLATE.read_bytes())
    assign(root / "only", root / "exercises")
    for path in (root / "only").iterdir(): path.unlink()
    (root / "only").rmdir()


def edit_first_answer(path: Path):
    notebook = nbformat.read(path, as_version=4)
    next(cell for cell in notebook.cells if cell.metadata.get("mlops_kit", {}).get("role") == "answer").source = "my answer"
    nbformat.write(notebook, path)
