"""`mlops-kit tour`: the whole lifecycle on the case study, headless, as a learner runs it from a terminal.

It must detect the planted episodes at the right dates and nothing before them: the unit incident of February 2025
(monthly_charges in cents), the covariate drift of April 2025 (contract_type, tenure_months), and the concept drift of
September 2025, which leaves the inputs unchanged and is caught by performance monitoring once September's labels
arrive (the label lag is one month, so the alert is dated at the end of October). Then retraining on the logged,
labelled traffic promotes a better model, and the journal holds every decision.
"""
import json, subprocess, sys
from pathlib import Path

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


def test_alerts_come_at_the_planted_episodes_and_not_before(tour):
    folder, _ = tour
    alerts = [record.data for record in Project.open(folder / "churn.journal.json").records("alert")]
    assert alerts, "the tour raised no alert"
    assert min(alert["window"] for alert in alerts) == "2025-02", "an alert came before the first planted problem"
    drift = [(alert["window"], alert["subject"]) for alert in alerts if alert["kind"] == "column drift"]
    assert drift[:2] == [("2025-02", ["monthly_charges"]), ("2025-04", ["contract_type", "tenure_months"])]
    concept = [alert for alert in alerts if alert["kind"] == "performance" and alert["window"] >= "2025-09"]
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
