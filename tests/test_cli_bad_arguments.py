"""Every `mlops-kit` subcommand, given careless arguments, answers with one line and exit code 2: never a traceback,
and never a change to a file that was there before.

Each case runs the installed console script in a subprocess, as a user runs it, in a folder of its own that holds
the files a careless user might point at: a text file, a folder, a corrupt journal, a model registry, earlier outputs.
The hashes of every file in that folder are compared before and after.
"""
import hashlib, json, os, shutil, socket, subprocess, sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

COMMAND = str(Path(sys.executable).parent / "mlops-kit")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    "A model registry whose model 'churn' v1 is the champion: what `serve` may be pointed at"
    from mlops_kit.design import simple_model
    from mlops_kit.data import load_case_study
    from mlops_kit.lifecycle import Criteria
    from mlops_kit.development import ModelRegistry
    training = load_case_study(seed=42).clean_sample(3_000, seed=0).between(end="2024-07-01")
    model = simple_model(training.categorical, training.numerical).fit(training.X, training.y)
    registry = ModelRegistry(tmp_path_factory.mktemp("registry") / "models")
    version = registry.register(model, training, Criteria("recall >= 0.6", ["precision >= 0.2"]),
                                {"recall": 0.7, "precision": 0.3}, name="churn", threshold=0.2)
    registry.promote("churn", version.version)
    return registry.folder


def _journal_text() -> str:
    return json.dumps({"format": "mlops-kit journal", "format_version": 1, "name": "churn",
                       "created": "2026-01-01T00:00:00+00:00", "entries": []})


@pytest.fixture
def workspace(tmp_path, models) -> Path:
    "A folder holding what a careless user points at: text, CSV, journal, notebook files, folders and a registry"
    (tmp_path / "notes.txt").write_text("my own notes, not data\n")
    (tmp_path / "app.log").write_text("2026-01-01 12:00:00 INFO started\n")
    (tmp_path / "churn.csv").write_text("customer_id,month,plan,churned\n1,2024-01-01,basic,0\n2,2024-01-01,pro,1\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x01garbage")
    (tmp_path / "report.md").write_text("# my edited report\n")
    (tmp_path / "project.journal.json").write_text(_journal_text())
    (tmp_path / "broken.journal.json").write_text('{"format": "mlops-kit journal", "entries": [')
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "empty-registry").mkdir()
    (tmp_path / "solutions").mkdir()
    for notebook in ("00_template.ipynb", "01_the_lifecycle_practice.ipynb"):
        (tmp_path / "solutions" / notebook).write_bytes((REPO_ROOT / "solutions" / notebook).read_bytes())
    (tmp_path / "solutions-broken").mkdir()
    (tmp_path / "solutions-broken" / "01_a.ipynb").write_bytes((REPO_ROOT / "solutions" / "01_the_lifecycle_practice.ipynb").read_bytes())
    (tmp_path / "solutions-broken" / "02_b.ipynb").write_text("{not a notebook")
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "01_the_lifecycle_practice.ipynb").write_text("{}")
    (tmp_path / "grades").write_text("a file where the scorecards would go\n")
    shutil.copytree(models, tmp_path / "models")
    return tmp_path


def _hashes(folder: Path) -> dict:
    "Every path under `folder` but lock files, with the sha256 of each file's bytes ('folder' for a folder)"
    return {str(path.relative_to(folder)): "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.suffix != ".lock"}  # a lock file is left by design


def _port_in_use():
    "A listening socket on a loopback port, and its port number"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener, listener.getsockname()[1]


CASES = {
    # case-study
    "case-study: a negative seed": (["case-study", "out.csv", "--seed", "-1"], "seed"),
    "case-study: the same file twice": (["case-study", "out.csv", "--ground-truth", "out.csv"], "same file"),
    "case-study: the same file, spelled two ways": (["case-study", "out.csv", "--ground-truth", "./a-folder/../out.csv"], "same file"),
    "case-study: an existing output": (["case-study", "churn.csv"], "--overwrite"),
    "case-study: an existing ground truth": (["case-study", "out.csv", "--ground-truth", "notes.txt"], "--overwrite"),
    "case-study: a folder as output": (["case-study", "a-folder"], "a-folder"),
    "case-study: a missing folder": (["case-study", "no-such-folder/out.csv"], "no-such-folder"),
    "case-study: a file as folder": (["case-study", "notes.txt/out.csv"], "notes.txt"),
    # check-data
    "check-data: missing files": (["check-data", "no-such.csv", "churn.csv"], "no-such.csv"),
    "check-data: a folder": (["check-data", "a-folder", "churn.csv"], "a-folder"),
    "check-data: an empty file": (["check-data", "churn.csv", "empty.csv"], "empty.csv"),
    "check-data: a binary file": (["check-data", "binary.csv", "churn.csv"], "binary.csv"),
    "check-data: an unknown target": (["check-data", "churn.csv", "churn.csv", "--target", "churn"], "churn"),
    "check-data: an unknown time column": (["check-data", "churn.csv", "churn.csv", "--time-column", "date"], "date"),
    "check-data: a time column without dates": (["check-data", "churn.csv", "churn.csv", "--time-column", "plan"], "plan"),
    "check-data: an unknown id column": (["check-data", "churn.csv", "churn.csv", "--id-column", "id"], "id"),
    # report
    "report: no journal": (["report", "no-such.journal.json"], "no-such.journal.json"),
    "report: a folder as journal": (["report", "a-folder"], "a-folder"),
    "report: a corrupt journal": (["report", "broken.journal.json"], "broken.journal.json"),
    "report: an existing output": (["report", "project.journal.json", "--output", "report.md"], "--overwrite"),
    "report: an output of another kind": (["report", "project.journal.json", "--output", "report.pdf"], ".pdf"),
    "report: an output in a missing folder": (["report", "project.journal.json", "--output", "no-such-folder/r.md"], "no-such-folder"),
    # experiment
    "experiment worker: a text file as storage": (["experiment", "worker", "--storage", "app.log", "--study", "s", "--trials", "5"], "app.log"),
    "experiment worker: a study that does not exist": (["experiment", "worker", "--storage", "new.journal", "--study", "s", "--trials", "5"], "s"),
    "experiment worker: negative trials": (["experiment", "worker", "--storage", "new.journal", "--study", "s", "--trials", "-1"], "--trials"),
    "experiment worker: zero threads": (["experiment", "worker", "--storage", "new.journal", "--study", "s", "--trials", "5", "--n-jobs", "0"], "--n-jobs"),
    "experiment worker: an unknown storage": (["experiment", "worker", "--storage", "mysql://me@host/db", "--study", "s", "--trials", "5"], "mysql"),
    "experiment cleanup: a negative age": (["experiment", "cleanup", "--storage", "new.journal", "--study", "s", "--older-than", "-5"], "--older-than"),
    "experiment cleanup: a text file as storage": (["experiment", "cleanup", "--storage", "notes.txt", "--study", "s", "--older-than", "5"], "notes.txt"),
    # serve
    "serve: a port out of range": (["serve", "--models", "models", "--port", "99999"], "99999"),
    "serve: a negative port": (["serve", "--models", "models", "--port", "-1"], "-1"),
    "serve: no registry": (["serve", "--models", "no-such-folder"], "no-such-folder"),
    "serve: an empty registry": (["serve", "--models", "empty-registry"], "No model in 'empty-registry' yet"),
    "serve: a version that does not exist": (["serve", "--models", "models", "--version", "7"], "7"),
    "serve: a folder as log": (["serve", "--models", "models", "--log", "a-folder"], "a-folder"),
    "serve: a text file as log": (["serve", "--models", "models", "--log", "notes.txt"], "notes.txt"),
    "serve: no rows per request": (["serve", "--models", "models", "--max-batch-rows", "0"], "--max-batch-rows"),
    "serve: no bytes per request": (["serve", "--models", "models", "--max-body-bytes", "-5"], "--max-body-bytes"),
    # tour
    "tour: no trials": (["tour", "--trials", "0", "--output", "tour"], "--trials"),
    "tour: a negative seed": (["tour", "--seed", "-1", "--output", "tour"], "seed"),
    "tour: a file as output": (["tour", "--output", "notes.txt"], "notes.txt"),
    # practice
    "assign: onto its own solutions": (["assign", "solutions", "solutions"], "solutions"),
    "assign: onto its own solutions, spelled another way": (["assign", "solutions", "./a-folder/../solutions/"], "solutions"),
    "assign: a broken solution notebook": (["assign", "solutions-broken", "new-exercises"], "02_b.ipynb"),
    "assign: no solutions": (["assign", "no-such-folder", "new-exercises"], "no-such-folder"),
    "assign: over a changed exercise": (["assign", "solutions", "exercises"], "--force"),
    "grade: no notebook": (["grade", "no-such.ipynb", "--solutions", "solutions"], "no-such.ipynb"),
    "grade: no solutions": (["grade", "exercises", "--solutions", "no-such-folder", "--output", "new-grades"], "no-such-folder"),
    "grade: a file where the scorecards go": (["grade", "exercises/01_the_lifecycle_practice.ipynb", "--solutions", "solutions", "--output", "grades"], "grades"),
    "grade: no time per cell": (["grade", "exercises", "--solutions", "solutions", "--timeout", "0"], "--timeout"),
    "validate: no time per cell": (["validate", "--solutions", "solutions", "--exercises", "exercises", "--timeout", "-1"], "--timeout"),
    "validate: no runs at a time": (["validate", "--solutions", "solutions", "--exercises", "exercises", "--jobs", "0"], "--jobs"),
    "validate: no solutions": (["validate", "--solutions", "no-such-folder", "--exercises", "exercises"], "no-such-folder"),
    "seal: NaN": (["seal", "lifecycle-first-phase", "NaN"], "ANSWER"),
    "seal: not JSON": (["seal", "lifecycle-first-phase", "Design"], "ANSWER"),
    "seal: no exercise": (["seal", "", '"Design"'], "exercise"),
}


def run(arguments: list, cwd: Path) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in os.environ.items() if name != "MLOPS_KIT_DEBUG"}
    return subprocess.run([COMMAND, *arguments], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("case", CASES)
def test_a_careless_argument_gets_one_line_and_exit_code_2(case, workspace):
    arguments, mentioned = CASES[case]
    before = _hashes(workspace)
    result = run(arguments, workspace)
    output = result.stdout + result.stderr
    assert result.returncode == 2, f"exit code {result.returncode}:\n{output[-3000:]}"
    assert "Traceback" not in output, output[-3000:]
    error_lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1, f"expected one error line:\n{result.stderr}"
    assert mentioned in error_lines[0], f"the message does not name {mentioned!r}: {error_lines[0]}"
    assert _hashes(workspace) == before, "a refused command wrote, changed or removed a file or folder"


def test_serve_on_a_port_in_use_says_so_and_leaves_no_log(workspace):
    listener, port = _port_in_use()
    with listener:
        result = run(["serve", "--models", "models", "--port", str(port), "--log", "predictions.db"], workspace)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output[-3000:]
    assert str(port) in result.stderr and "in use" in result.stderr
    assert not (workspace / "predictions.db").exists()


def test_debug_shows_the_traceback_of_a_mistake(workspace):
    environment = dict(os.environ, MLOPS_KIT_DEBUG="1")
    result = subprocess.run([COMMAND, "report", "broken.journal.json"], cwd=workspace, env=environment,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "broken.journal.json" in result.stderr.splitlines()[-1]
