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
    assert [command[1] for command in commands] == ["case-study", "case-study", "check-data", "report"]
    executable = str(Path(sys.executable).parent / "mlops-kit")
    assert subprocess.run([executable, *commands[0][1:]], cwd=tmp_path).returncode == 0
    assert subprocess.run([executable, *commands[1][1:]], cwd=tmp_path).returncode == 0
    churn, practice = pd.read_csv(tmp_path / "churn.csv"), pd.read_csv(tmp_path / "practice.csv")
    assert churn.shape == practice.shape and not churn.equals(practice)  # the same customers, other problems
    churn[churn.month < "2024-07-01"].to_csv(tmp_path / "reference.csv", index=False)
    churn[churn.month >= "2025-12-01"].to_csv(tmp_path / "this-month.csv", index=False)
    checked = subprocess.run([executable, *commands[2][1:]], cwd=tmp_path, capture_output=True, text=True)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "cancel_page_visits" in checked.stdout and "usage_hours" in checked.stdout
    from mlops_kit.lifecycle import Project
    Project(tmp_path / commands[3][2], name="churn")
    assert subprocess.run([executable, *commands[3][1:]], cwd=tmp_path).returncode == 0
    assert "Phase report: churn" in (tmp_path / "report.html").read_text()


def test_readme_serve_command_serves_the_model_the_example_registered(tmp_path):
    "The serving example registers a champion; `mlops-kit serve` as the README writes it (on a free port) serves it"
    import httpx, os, signal, time
    from conftest import free_port
    example = next(block for block in re.findall(r"```python\n(.*?)```", README, re.S) if "BackgroundServer" in block and "churn" in block)
    assert subprocess.run([sys.executable, "-c", example], cwd=tmp_path, timeout=300).returncode == 0
    serve_block = next(block for block in re.findall(r"```sh\n(.*?)```", README, re.S) if "mlops-kit serve" in block)
    command = next(line.split() for line in serve_block.splitlines() if line.startswith("mlops-kit serve"))
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    executable = str(Path(sys.executable).parent / "mlops-kit")
    server = subprocess.Popen([executable, *command[1:]], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(600):
                if server.poll() is not None: raise AssertionError(f"mlops-kit serve stopped: {server.stdout.read()}")
                try:
                    if http.get("/v2/health/ready").status_code == 200: break
                except httpx.TransportError: pass
                time.sleep(0.1)
            metadata = http.get("/v2/models/churn").json()
            assert metadata["parameters"]["threshold"] == 0.2
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert "Serving 'churn' v1 on http://127.0.0.1" in output


def test_readme_tour_command_is_one_the_command_line_accepts():
    "The tour command as the README writes it parses (tests/test_tour.py runs the tour itself)"
    from mlops_kit.cli import build_parser
    block = next(block for block in re.findall(r"```sh\n(.*?)```", README, re.S) if "mlops-kit tour" in block)
    command = next(line.split("#")[0].split() for line in block.splitlines() if line.startswith("mlops-kit tour"))
    arguments = build_parser().parse_args(command[1:])
    assert arguments.command == "tour" and str(arguments.output) == "churn-tour"
