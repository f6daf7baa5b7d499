"""What the README promises works as written."""
import re, subprocess, sys
from pathlib import Path

from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_readme_starts_with_the_two_commands():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make lab", "make test"]


def test_readme_python_examples_run(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks, "the README should show the library in use"
    for block in blocks:
        result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"README example failed:\n{block}\n{result.stderr[-3000:]}"


def test_readme_command_line_examples_run(tmp_path):
    "The terminal examples, run as written: the case study is written; a late extract fails the check (exit code 1)"
    import pandas as pd
    terminal_block = re.findall(r"```sh\n(.*?)```", README, re.S)[1]
    commands = [line.split("  #")[0].split() for line in terminal_block.splitlines() if line.startswith("mlops-kit")]
    assert [command[1] for command in commands] == ["case-study", "check-data", "report"]
    executable = str(Path(sys.executable).parent / "mlops-kit")
    assert subprocess.run([executable, *commands[0][1:]], cwd=tmp_path).returncode == 0
    churn = pd.read_csv(tmp_path / "churn.csv")
    churn[churn.month < "2024-07-01"].to_csv(tmp_path / "reference.csv", index=False)
    churn[churn.month >= "2025-12-01"].to_csv(tmp_path / "this-month.csv", index=False)
    checked = subprocess.run([executable, *commands[1][1:]], cwd=tmp_path, capture_output=True, text=True)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "cancel_page_visits" in checked.stdout and "usage_hours" in checked.stdout
    from mlops_kit.lifecycle import Project
    Project(tmp_path / commands[2][2], name="churn")
    assert subprocess.run([executable, *commands[2][1:]], cwd=tmp_path).returncode == 0
    assert "Phase report: churn" in (tmp_path / "report.html").read_text()
