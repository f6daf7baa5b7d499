"""Property: whatever arguments a user types, `mlops-kit` answers with an exit code of 0, 1 or 2 and no traceback;
a refused command (exit code 2) leaves every file as it was.

Hypothesis builds command lines from the pieces a careless user reaches for: paths to files of every kind (missing,
a folder, a text file, a corrupt journal, the same path twice, another spelling of it), numbers out of range, text
where a number belongs, and odd text. The commands run in this process (`main(argv)`), in a fresh folder each time.
Commands that would run for minutes with valid arguments (`tour`, `grade` and `validate` of real work, `serve` of a
real model) are covered by tests/test_cli_bad_arguments.py instead; here their arguments never let them start.
"""
import contextlib, hashlib, io, json, tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings, strategies as st

from conftest import REPO_ROOT
from mlops_kit.cli import main

EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FILES = {
    "notes.txt": "my own notes\n",
    "app.log": "2026-01-01 12:00:00 INFO started\n",
    "data.csv": "customer_id,month,plan,churned\n1,2024-01-01,basic,0\n2,2024-02-01,pro,1\n3,2024-02-01,pro,0\n",
    "empty.csv": "",
    "project.journal.json": json.dumps({"format": "mlops-kit journal", "format_version": 1, "name": "p",
                                        "created": "2026-01-01T00:00:00+00:00", "entries": []}),
    "broken.journal.json": '{"format": "mlops-kit journal", "entries": [',
    "report.md": "# my report\n",
    "solutions/01_the_lifecycle_practice.ipynb": (REPO_ROOT / "solutions" / "01_the_lifecycle_practice.ipynb").read_text(),
    "exercises/01_the_lifecycle_practice.ipynb": "{}",
    "broken-solutions/01_a.ipynb": "{not a notebook",
    "empty-registry/.keep": "",
    "a-folder/.keep": "",
}
EXISTING = [name for name in FILES if "/" not in name] + ["a-folder", "solutions", "exercises", "empty-registry"]
MISSING = ["new.csv", "out/new.csv", "new.journal", "new-folder", "notes.txt/inside.csv"]
SPELLINGS = ["./notes.txt", "a-folder/../notes.txt", "solutions/", "./solutions", "a-folder/../solutions"]

odd_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
paths = st.one_of(st.sampled_from(EXISTING + MISSING + SPELLINGS), odd_text)
whole_numbers = st.one_of(st.integers(-10**20, 10**20), st.sampled_from([0, 1, -1, 65535, 65536, 2**31, 2**64]))
numbers = st.one_of(whole_numbers.map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr), odd_text)
valid_setting = st.integers(1, 60).map(str)
settings_values = st.one_of(valid_setting, valid_setting, valid_setting, numbers)  # mostly valid: later checks are reached


def option(name: str, values) -> st.SearchStrategy:
    "Either nothing, or `name` followed by a value"
    return st.one_of(st.just([]), values.map(lambda value: [name, value]))


def command(*parts) -> st.SearchStrategy:
    "A command line: fixed words and strategies of lists of arguments, concatenated"
    pieces = [st.just([part]) if isinstance(part, str) else part for part in parts]
    return st.tuples(*pieces).map(lambda lists: [word for words in lists for word in words])


def one(strategy) -> st.SearchStrategy: return strategy.map(lambda value: [value])


def _hashes(folder: Path) -> dict:
    return {str(path.relative_to(folder)): "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.suffix != ".lock"}


def assert_answers_without_traceback(argv: list):
    "Run `mlops-kit argv` in a fresh folder: exit code 0, 1 or 2, no traceback; exit code 2 changes no file"
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        for name, text in FILES.items():
            Path(name).parent.mkdir(parents=True, exist_ok=True)
            Path(name).write_text(text)
        before = _hashes(Path(folder))
        output = io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            try: code = main(argv)
            except SystemExit as exit: code = exit.code  # argparse refuses what it cannot parse, with exit code 2
        printed = output.getvalue()
        event(f"exit code {code}" + (" (argparse)" if "usage:" in printed else ""))  # --hypothesis-show-statistics
        assert code in (0, 1, 2), f"mlops-kit {argv} gave exit code {code}:\n{printed[-3000:]}"
        assert "Traceback" not in printed, f"mlops-kit {argv}:\n{printed[-3000:]}"
        if code == 2:
            assert _hashes(Path(folder)) == before, f"mlops-kit {argv} was refused but changed a file"


@EXAMPLES
@given(command("case-study", one(paths), option("--seed", st.one_of(st.sampled_from(["1", "2"]), numbers)),
               option("--ground-truth", paths), st.sampled_from([[], ["--overwrite"]])))
def test_case_study_arguments(argv):
    assert_answers_without_traceback(argv)


@EXAMPLES
@given(command("check-data", one(paths), one(paths), option("--target", odd_text | st.sampled_from(["churned", "plan"])),
               option("--time-column", odd_text | st.sampled_from(["month", "plan"])),
               option("--id-column", odd_text | st.sampled_from(["customer_id"]))))
def test_check_data_arguments(argv):
    assert_answers_without_traceback(argv)


@EXAMPLES
@given(command("report", one(paths), option("--phase", odd_text | st.sampled_from(["design", "deployment"])),
               st.sampled_from([[], ["--ml-test-score"]]), option("--output", paths | st.sampled_from(["r.md", "r.html", "r.pdf"])),
               st.sampled_from([[], ["--overwrite"]])))
def test_report_arguments(argv):
    assert_answers_without_traceback(argv)


@EXAMPLES
@given(st.one_of(
    command("experiment", "worker", one(paths | st.sampled_from(["sqlite:///s.db", "journal:new.journal", "x://y"])).map(lambda v: ["--storage", *v]),
            one(odd_text).map(lambda v: ["--study", *v]), one(settings_values).map(lambda v: ["--trials", *v]), option("--heartbeat-interval", settings_values),
            option("--grace-period", settings_values), option("--n-jobs", settings_values)),
    command("experiment", "cleanup", one(paths).map(lambda v: ["--storage", *v]), one(odd_text).map(lambda v: ["--study", *v]),
            one(settings_values).map(lambda v: ["--older-than", *v]), st.sampled_from([[], ["--no-retry"]]))))
def test_experiment_arguments(argv):
    assert_answers_without_traceback(argv)


@EXAMPLES
@given(command("serve", option("--models", st.sampled_from(["empty-registry", "no-such-folder", "notes.txt", "a-folder"])),
               option("--name", odd_text), option("--version", settings_values), option("--host", odd_text | st.just("127.0.0.1")),
               option("--port", settings_values), option("--log", paths), option("--max-batch-rows", settings_values),
               option("--max-body-bytes", settings_values)))
def test_serve_arguments_that_cannot_start_a_server(argv):
    assert_answers_without_traceback(argv)


@EXAMPLES
@given(st.one_of(
    command("assign", one(paths | st.just("broken-solutions")), one(paths | st.just("new-exercises")),
            st.sampled_from([[], ["--check"], ["--force"]])),
    command("grade", one(st.sampled_from(["exercises/01_the_lifecycle_practice.ipynb", "notes.txt", "no-such.ipynb", "a-folder"])),
            option("--solutions", paths), option("--output", paths), option("--timeout", settings_values)),
    command("validate", one(st.sampled_from(["no-such-folder", "notes.txt", "a-folder", "broken-solutions"])).map(lambda path: ["--solutions", *path]),
            option("--exercises", paths), option("--timeout", settings_values), option("--short-timeout", settings_values),
            option("--jobs", settings_values)),
    command("seal", one(odd_text | st.just("lifecycle-first-phase")),
            one(st.one_of(odd_text, st.sampled_from(["NaN", "Infinity", '"Design"', "[1, 2]", '{"a": 1}', "1e400", "null"])))),
))
def test_practice_arguments(argv):
    assert_answers_without_traceback(argv)
