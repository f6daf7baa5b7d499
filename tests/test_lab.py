"""`make lab` serves the course: JupyterLab starts headless on loopback and opens the course home."""
import os, secrets, subprocess, sys
from pathlib import Path

import httpx
import pytest

from conftest import REPO_ROOT, free_port, stop_process_group, wait_until_serving

pytestmark = pytest.mark.slow


@pytest.fixture
def running_lab(tmp_path):
    "Run `make lab` headless on a free loopback port with a known token, the learner's copy of the course in tmp_path; stop it afterwards"
    port, token = free_port(), secrets.token_hex(16)
    venv = Path(sys.prefix)
    environment = {**os.environ, "JUPYTER_TOKEN": token, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log_path = tmp_path / "lab.log"
    with open(log_path, "w") as log:
        # `-o` tells make the environment is installed already: the test suite runs inside it.
        process = subprocess.Popen(
            ["make", "-o", f"{venv}/.installed", "lab", f"VENV={venv}", f"PORT={port}", "NO_BROWSER=1", f"COURSE={tmp_path / 'my-course'}"],
            cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}", token, process, log_path
    finally:
        stop_process_group(process)


def test_make_lab_serves_the_course_home(running_lab):
    base_url, token, process, log_path = running_lab
    page = wait_until_serving(f"{base_url}/lab?token={token}", process, log_path)
    assert "JupyterLab" in page.text
    # The token protects the server: without it the API refuses.
    assert httpx.get(f"{base_url}/api/contents/nbs").status_code == 403
    contents = httpx.get(f"{base_url}/api/contents/nbs/index.ipynb", params={"token": token}).json()
    assert contents["type"] == "notebook"
    titles = [cell["source"] for cell in contents["content"]["cells"] if cell["cell_type"] == "markdown"]
    assert titles and titles[0].startswith("# mlops-kit")
    # Its front door opens the course home.
    home = httpx.get(f"{base_url}/", params={"token": token})
    assert home.status_code == 302 and "/lab/tree/nbs/index.ipynb" in home.headers["location"]
    assert f"http://127.0.0.1:{base_url.rsplit(':', 1)[1]}/lab/tree/nbs/index.ipynb" in log_path.read_text()
    assert process.poll() is None


@pytest.mark.service("chromium")
def test_course_home_renders_in_a_browser(running_lab, chromium_executable, tmp_path):
    base_url, token, process, log_path = running_lab
    wait_until_serving(f"{base_url}/lab?token={token}", process, log_path)
    command = [chromium_executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=30000",
               "--dump-dom", f"{base_url}/lab/tree/nbs/index.ipynb?token={token}"]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=180).stdout
    assert "jp-LabShell" in dom, dom[-2000:]
    assert "jp-Notebook" in dom


def test_a_lesson_saved_in_the_lab_changes_the_learners_copy_and_no_tracked_file(running_lab, tmp_path):
    "`make lab` serves the learner's own copy of the course: saving a lesson there leaves `git status` as it was"
    base_url, token, process, log_path = running_lab
    wait_until_serving(f"{base_url}/lab?token={token}", process, log_path)
    status = lambda: subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    before, lesson = status(), "nbs/course/01_the_lifecycle.ipynb"
    saved = httpx.get(f"{base_url}/api/contents/{lesson}", params={"token": token}).json()
    saved["content"]["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "My notes on the lifecycle."})
    answer = httpx.put(f"{base_url}/api/contents/{lesson}", params={"token": token}, json={"type": "notebook", "format": "json", "content": saved["content"]})
    assert answer.status_code == 200, answer.text
    assert "My notes on the lifecycle." in (tmp_path / "my-course" / lesson).read_text()
    assert "My notes" not in (REPO_ROOT / lesson).read_text() and status() == before
