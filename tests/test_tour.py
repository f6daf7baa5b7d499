"""`mlops-kit tour`: the whole lifecycle on the case study, headless, as a learner runs it from a terminal.

It must detect the planted episodes at the right dates and nothing before them: the unit incident of February 2025
(monthly_charges in cents), the covariate drift of April 2025 (contract_type, tenure_months), and the concept drift of
September 2025, which leaves the inputs unchanged and is caught by performance monitoring once September's labels
arrive (the label lag is one month, so the alert is dated at the end of October). Then retraining on the logged,
labelled traffic promotes a better model, and the journal holds every decision. The report names the planted problem
behind each alert, read from the case study's ground truth, on the default seed and on another.
"""
import json, re, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from mlops_kit.lifecycle import Project

COMMAND = str(Path(sys.executable).parent / "mlops-kit")


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    "One tour run in a fresh folder: (its output folder, what it printed)"
    folder = tmp_path_factory.mktemp("tour") / "churn-tour"
    finished = subprocess.run([COMMAND, "tour", "--output", str(folder), "--trials", "6"], capture_output=True, text=True, timeout=900)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return folder, finished.stdout


def test_the_tour_prints_each_phase_and_writes_its_report(tour):
    folder, printed = tour
    assert [line.split()[0] for line in printed.splitlines()[:4]] == ["design", "development", "deployment", "monitoring"]
    assert "loop back" in printed and f"Report: {folder / 'report.md'}" in printed
    report = (folder / "report.md").read_text()
    for section in ["## Steps", "## Alerts", "## The loop back", "## Decisions", "](drift.png)", "](performance.png)"]:
        assert section in report
    for figure in ["drift.png", "performance.png"]:
        assert (folder / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    exponents = re.findall(r"\d(?:\.\d+)?e[+-]\d+", report)
    assert not exponents, f"numbers with an exponent in the report: {exponents}"  # one number format: 42,014, not 4.2e+04


SECOND_SEED = 1  # another case study: other customers, the same planted timeline, other alerts (a false alarm in 2025-07)


@pytest.fixture(scope="module")
def second_tour(tmp_path_factory):
    "A tour on the case study of another seed: (its output folder, what it printed)"
    folder = tmp_path_factory.mktemp("tour") / "other-seed"
    finished = subprocess.run([COMMAND, "tour", "--output", str(folder), "--trials", "6", "--seed", str(SECOND_SEED)],
                              capture_output=True, text=True, timeout=900)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return folder, finished.stdout


def report_causes(report:str)->dict:
    "(window, kind, recommendation) -> the cause the report's alerts table gives each alert (a slow service's alert says keep)"
    rows = [line.strip("|").split(" | ") for line in report.splitlines() if line.startswith("| 20")]
    return {(cells[0].strip(), cells[1], cells[3]): cells[2] for cells in rows}


@pytest.mark.parametrize("which, seed", [("tour", 42), ("second_tour", SECOND_SEED)])
def test_the_report_names_each_alerts_planted_cause_from_the_ground_truth(which, seed, request):
    from mlops_kit.data import load_case_study
    folder, _ = request.getfixturevalue(which)
    truth = load_case_study(seed=seed).ground_truth
    report = (folder / "report.md").read_text()
    grouped = report.split("## What caused the alerts")[1].split("\n## ")[0]
    for problem in truth:  # each planted problem by its month and columns, with the alerts it caused or 'no alert'
        line, = [line for line in grouped.splitlines() if line.startswith(f"- **{problem.kind.replace('_', ' ')} in ")]
        assert f"{problem.start:%Y-%m}" in line and f"in {', '.join(problem.columns)}," in line, line
    alerts = [record.data for record in Project.open(folder / "churn.journal.json").records("alert")]
    causes = report_causes(report)
    assert len(causes) == len(alerts)
    for alert in alerts:
        cause = causes[(alert["window"], alert["kind"], alert["recommendation"])]
        named = [problem for problem in truth if cause.startswith(f"{problem.kind.replace('_', ' ')} in {', '.join(problem.columns)},")]
        if not named:
            slow = set(alert["subject"]) <= {"latency_p50_ms", "latency_p95_ms", "latency_p99_ms"}
            assert cause == f"no planted problem ({'the service was slow' if slow else 'a false alarm'})" and alert["kind"] == "performance", alert
            continue
        assert named[0].affects(pd.Timestamp(alert["window"]))[0], (alert, cause)  # under way in the alert's window
        if alert["kind"].endswith("drift"): assert set(named[0].columns) & set(alert["subject"]), (alert, cause)
        assert f"{alert['kind']} in {alert['window']}" in grouped
    for problem in truth:  # alerts with one cause are grouped under it and said to be its consequences
        name = f"{problem.kind.replace('_', ' ')} in {', '.join(problem.columns)},"
        count = sum(cause.startswith(name) for cause in causes.values())
        line, = [line for line in grouped.splitlines() if line.startswith(f"- **{name}")]
        assert (f"{count} alerts, all consequences of this one problem" in line) == (count > 1), line
        assert ("no alert" in line) == (count == 0), line
        first = min((window for (window, *_), cause in causes.items() if cause.startswith(name)), default=None)
        assert first in (None, f"{problem.start:%Y-%m}"), f"{problem.kind} began in {problem.start:%Y-%m}, its first alert is {first}"
    for kind in ["quality_incident", "covariate_drift", "concept_drift"]:  # the three the README describes: each caused an alert
        assert any(cause.startswith(kind.replace("_", " ") + " in ") for cause in causes.values()), kind


def test_alerts_come_at_the_planted_episodes_and_not_before(tour):
    folder, _ = tour
    alerts = [record.data for record in Project.open(folder / "churn.journal.json").records("alert")]
    assert alerts, "the tour raised no alert"
    assert min(alert["window"] for alert in alerts) == "2025-02", "an alert came before the first planted problem"
    drift = [(alert["window"], alert["subject"]) for alert in alerts if alert["kind"] == "column drift"]
    assert drift[:2] == [("2025-02", ["monthly_charges"]), ("2025-04", ["contract_type", "tenure_months"])]
    concept = [alert for alert in alerts if alert["kind"] == "performance" and alert["recommendation"] == "retrain" and alert["window"] >= "2025-09"]
    assert len(concept) == 1 and concept[0]["window"] == "2025-09", concept
    assert concept[0]["at"].startswith("2025-10-31"), "the concept drift alert should wait for September's labels"
    assert not [alert for alert in alerts if alert["kind"] == "column drift" and alert["window"] >= "2025-09"], \
        "concept drift leaves the inputs unchanged: no drift alert is expected after September"


def test_the_loop_back_promotes_a_retrained_model_and_records_the_decisions(tour):
    folder, _ = tour
    project = Project.open(folder / "churn.journal.json")
    steps = [(str(decision.phase), str(decision.verdict), str(decision.return_to)) for decision in project.decisions]
    assert steps == [("design", "go", "None"), ("development", "go", "None"), ("deployment", "iterate", "development"),
                     ("development", "go", "None")]
    aliases = json.loads((folder / "models" / "churn" / "aliases.json").read_text())["history"]
    assert [entry["version"] for entry in aliases] == [1, 2], "the retrained model should have become champion"
    assert "replaces the champion" in (folder / "report.md").read_text()


def test_a_second_tour_into_the_same_folder_is_refused_and_changes_nothing(tour):
    folder, _ = tour
    journal = (folder / "churn.journal.json").read_bytes()
    again = subprocess.run([COMMAND, "tour", "--output", str(folder)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "already holds a tour" in again.stderr
    assert (folder / "churn.journal.json").read_bytes() == journal


def test_a_bad_number_of_trials_is_refused_before_anything_is_written(tmp_path):
    from mlops_kit.tour import run_tour
    with pytest.raises(ValueError, match="n_trials must be at least 1"):
        run_tour(tmp_path / "tour", n_trials=0)
    assert not (tmp_path / "tour").exists()


# --- issue 13: bad arguments are refused before any work, and earlier work is left as it was -------------------------

import contextlib, hashlib, io

from mlops_kit.errors import MlopsKitError, WrongTypeError


def hashes(folder: Path) -> dict:
    "sha256 of every file under `folder`, by relative path: compared before and after a refused tour"
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def run_tour_command(*arguments) -> tuple[int, str]:
    "Run `mlops-kit tour` in this process: (exit code, what it printed on both streams)"
    from mlops_kit.cli import main
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try: code = main(["tour", *map(str, arguments)])
        except SystemExit as stopped: code = stopped.code
    return code, output.getvalue()


@pytest.fixture
def earlier_work(tmp_path):
    "A folder with a learner's files: notes, and a folder holding an earlier tour's report and models"
    (tmp_path / "notes.txt").write_text("my notes")
    (tmp_path / "old-tour" / "models").mkdir(parents=True)
    (tmp_path / "old-tour" / "report.md").write_text("the report of an earlier tour, annotated")
    (tmp_path / "old-tour" / "models" / "card.json").write_text("{}")
    return tmp_path


@pytest.mark.parametrize("arguments, message", [
    (["--trials", "0"], "--trials must be at least 1, got 0"),
    (["--trials", "-5"], "--trials must be at least 1, got -5"),
    (["--seed", "-1"], "--seed must be a whole number from 0 to 4294967295, got -1"),
    (["--seed", str(2**32)], "--seed must be a whole number from 0 to 4294967295, got 4294967296"),
    (["--output", "{tmp}/notes.txt"], "notes.txt' is a file, but the tour writes a folder of results there"),
    (["--output", "{tmp}/notes.txt/tour"], "notes.txt' is a file"),
    (["--output", "{tmp}/old-tour"], "holds earlier work the tour would overwrite (models, report.md): choose another output folder"),
])
def test_the_tour_refuses_bad_arguments_in_one_line_before_any_work(earlier_work, monkeypatch, arguments, message):
    monkeypatch.chdir(earlier_work)                    # the default output folder would be made here
    before = hashes(earlier_work)
    code, output = run_tour_command(*[argument.format(tmp=earlier_work) for argument in arguments])
    assert code == 2 and message.format(tmp=earlier_work) in output, output
    assert "Traceback" not in output and len(output.strip().splitlines()) == 1, output
    assert hashes(earlier_work) == before and sorted(path.name for path in earlier_work.iterdir()) == ["notes.txt", "old-tour"]


@pytest.mark.parametrize("arguments, error, message", [
    (dict(n_trials=0), MlopsKitError, "n_trials must be at least 1"),
    (dict(n_trials=2.5), WrongTypeError, "got 2.5"),
    (dict(n_trials=True), WrongTypeError, "got True"),
    (dict(seed=-1), MlopsKitError, "`seed` must be a whole number from 0 to 4,294,967,295, got -1"),
    (dict(seed="42"), WrongTypeError, "got '42'"),
    (dict(echo="print"), WrongTypeError, "echo must be a function"),
    (dict(output=None), WrongTypeError, "output must be a folder name"),
    (dict(output="{tmp}/notes.txt"), FileExistsError, "is a file"),
    (dict(output="{tmp}/old-tour"), FileExistsError, "holds earlier work the tour would overwrite"),
])
def test_run_tour_refuses_bad_arguments_before_any_work(earlier_work, monkeypatch, arguments, error, message):
    from mlops_kit.tour import run_tour
    monkeypatch.chdir(earlier_work)
    arguments = {name: value.format(tmp=earlier_work) if isinstance(value, str) and name == "output" else value
                 for name, value in arguments.items()}
    before = hashes(earlier_work)
    with pytest.raises(error) as raised: run_tour(**{"output": earlier_work / "tour", **arguments})
    assert message in str(raised.value)
    assert hashes(earlier_work) == before and sorted(path.name for path in earlier_work.iterdir()) == ["notes.txt", "old-tour"]


def test_the_outputs_the_tour_guards_are_what_it_writes(tour):
    "The list of outputs checked before a tour must name everything a tour writes, or a second tour could overwrite it"
    from mlops_kit.tour import _TOUR_OUTPUTS
    folder, _ = tour
    written = {path.name for path in folder.iterdir() if not path.name.endswith(".lock")}
    assert written == set(_TOUR_OUTPUTS)


def test_a_search_too_short_to_meet_the_criteria_stops_the_tour_with_advice_and_an_iterate_in_the_journal(tmp_path):
    "With seed 7, three trials find no model meeting the cost criterion: the tour says what to do, and the journal says why it stopped"
    from mlops_kit.tour import run_tour
    with pytest.raises(MlopsKitError, match=r"none of the 3 trials meets the criteria.*e\.g\. --trials 12"):
        run_tour(tmp_path / "tour", seed=7, n_trials=3, echo=lambda text: None)
    decisions = Project(tmp_path / "tour" / "churn.journal.json").decisions
    assert [(decision.phase, decision.verdict) for decision in decisions] == [("design", "go"), ("development", "iterate")]
    assert str(decisions[-1].return_to) == "development"
    models = tmp_path / "tour" / "models"
    assert not models.exists() or not any(models.rglob("*.skops")), "no model that misses the criteria is registered"
