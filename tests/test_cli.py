"""The `mlops-kit` command, run as a user runs it: the installed console script in a subprocess."""
import shutil, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

import mlops_kit
from mlops_kit.data import load_case_study

COMMAND = str(Path(sys.executable).parent / "mlops-kit")


def run(*arguments, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([COMMAND, *arguments], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_version_and_help():
    assert run("--version").stdout.strip() == f"mlops-kit {mlops_kit.__version__}"
    for arguments in [["--help"], []]:
        result = run(*arguments)
        assert result.returncode == 0
        assert "case-study" in result.stdout and "check-data" in result.stdout


def test_an_unknown_command_or_option_is_refused_with_usage():
    result = run("deploy-everything")
    assert result.returncode == 2
    assert "invalid choice: 'deploy-everything'" in result.stderr
    result = run("case-study", "out.csv", "--seed", "forty-two")
    assert result.returncode == 2 and "invalid int value: 'forty-two'" in result.stderr


def test_case_study_writes_the_data_and_its_ground_truth(tmp_path):
    result = run("case-study", "churn.csv", "--seed", "3", "--ground-truth", "planted.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(tmp_path / "churn.csv")
    expected = load_case_study(seed=3).frame
    assert written.shape == expected.shape and list(written.columns) == list(expected.columns)
    assert written["churned"].sum() == expected["churned"].sum()
    planted = pd.read_csv(tmp_path / "planted.csv")
    assert set(planted["kind"]) >= {"leakage", "missing_values", "quality_incident", "covariate_drift", "concept_drift"}


def test_case_study_never_overwrites_a_file(tmp_path):
    (tmp_path / "planted.csv").write_text("my own notes")
    result = run("case-study", "churn.csv", "--ground-truth", "planted.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert "planted.csv exists already: choose another file name or remove it first" in result.stderr
    assert (tmp_path / "planted.csv").read_text() == "my own notes"
    assert not (tmp_path / "churn.csv").exists()


@pytest.fixture(scope="module")
def extracts(tmp_path_factory) -> Path:
    "A trusted reference extract, a clean later extract and the last three months of the case study"
    folder = tmp_path_factory.mktemp("extracts")
    case_study = load_case_study(seed=42)
    clean = case_study.clean_sample(seed=0).frame
    clean.iloc[:6_000].to_csv(folder / "reference.csv", index=False)
    clean.iloc[6_000:9_000].to_csv(folder / "clean.csv", index=False)
    case_study.between("2025-10-01").frame.to_csv(folder / "late.csv", index=False)
    case_study.between(end="2024-07-01").frame.to_csv(folder / "early.csv", index=False)
    return folder


def test_check_data_passes_a_clean_extract(extracts):
    result = run("check-data", "reference.csv", "clean.csv", "--target", "churned", "--time-column", "month",
                 "--id-column", "customer_id", cwd=extracts)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "problems found" not in result.stdout


def test_check_data_finds_the_planted_problems_and_exits_1(extracts):
    result = run("check-data", "early.csv", "late.csv", "--target", "churned", "--time-column", "month",
                 "--id-column", "customer_id", cwd=extracts)
    assert result.returncode == 1
    assert "usage_hours" in result.stdout and "payment_method" in result.stdout  # the missing values
    assert "cancel_page_visits" in result.stdout  # the leak


@pytest.mark.parametrize("content, message", [
    (None, "missing.csv: no such file"),
    (b"\xff\xfe\x00garbage", "missing.csv is not a readable CSV file"),
    (b"", "missing.csv is not a readable CSV file"),
])
def test_check_data_explains_an_unreadable_file(extracts, tmp_path, content, message):
    if content is not None:
        (tmp_path / "missing.csv").write_bytes(content)
    result = run("check-data", str(extracts / "reference.csv"), "missing.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_check_data_explains_an_unknown_column(extracts):
    result = run("check-data", "reference.csv", "clean.csv", "--target", "churn", cwd=extracts)
    assert result.returncode == 2
    assert "churn" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def journal(tmp_path) -> Path:
    "A churn project whose design checklist is partly answered"
    from mlops_kit.design import phase_checklist
    from mlops_kit.lifecycle import Project
    project = Project(tmp_path / "churn.journal.json", name="churn")
    phase_checklist("design", project).set("problem-context", "manual", evidence="interviews with the retention team")
    return project.path


def test_report_prints_the_phase_report_from_a_journal(journal):
    result = run("report", str(journal), "--ml-test-score")
    assert result.returncode == 0, result.stderr
    assert "# Phase report: churn" in result.stdout and "Current phase: design" in result.stdout
    assert "interviews with the retention team" in result.stdout
    assert "ML Test Score 0:" in result.stdout


def test_report_saves_html_and_never_overwrites(journal, tmp_path):
    target = tmp_path / "report.html"
    assert run("report", str(journal), "--output", str(target)).returncode == 0
    assert target.read_text().startswith("<!DOCTYPE html>") and "problem-context" in target.read_text()
    target.write_text("my edited report")
    result = run("report", str(journal), "--output", str(target))
    assert result.returncode == 2 and "exists" in result.stderr
    assert target.read_text() == "my edited report"


def test_report_explains_a_corrupt_or_missing_journal_and_leaves_it_alone(tmp_path):
    corrupt = tmp_path / "broken.json"
    corrupt.write_text('{"format": "mlops-kit journal", "format_version": 1, "entries": [')
    before = corrupt.read_bytes()
    result = run("report", str(corrupt))
    assert result.returncode == 2 and "broken.json" in result.stderr and "Traceback" not in result.stderr
    assert corrupt.read_bytes() == before
    result = run("report", str(tmp_path / "absent.json"))
    assert result.returncode == 2 and "absent.json: no such journal file" in result.stderr
    assert not (tmp_path / "absent.json").exists()
