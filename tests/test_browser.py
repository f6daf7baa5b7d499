"""A learner's session in a real browser: an exercise notebook in JupyterLab, driven by Playwright.

Debian's headless Chromium opens a copy of an exercise notebook in a JupyterLab started for this test, runs it,
answers its multiple-choice question wrongly and then rightly (the feedback changes), and takes a screenshot.
After a kernel restart and a re-run the answer comes back from the answer file, and `mlops-kit grade` counts it.
A second test answers wrongly without checking and runs the notebook again: the widget comes back with its verdict,
the check cell shows the kit's short message (no traceback), and the Hint button gives the next hint.

Tier 2: it needs a Chromium browser (`chromium` from Debian) and the `playwright` Python package. Playwright's
own browser download is never used. Set `MLOPS_KIT_SCREENSHOTS=<folder>` to keep the screenshot (CI artifacts).
"""
import json, os, re, secrets, shutil, subprocess, sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import REPO_ROOT, free_port, skip_or_fail, stop_process_group, wait_until_serving
from mlops_kit.practice import AnswerStore

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # the fixture below says so: a skip on a laptop, a failure in CI
    expect = sync_playwright = None

pytestmark = [pytest.mark.slow, pytest.mark.service("chromium")]

# The exercise this test answers: change these when the exercise changes.
EXERCISE_NOTEBOOK = REPO_ROOT / "exercises" / "01_the_lifecycle_practice.ipynb"
SOLUTIONS = REPO_ROOT / "solutions"
EXERCISE_ID = "lifecycle-loop-back"   # "Where does a retrain go?"
WRONG_OPTION = "design"              # any other option
RIGHT_OPTION = "development"         # the solution notebook's answer

MLOPS_KIT = str(Path(sys.executable).parent / "mlops-kit")
SCREENSHOTS_VARIABLE = "MLOPS_KIT_SCREENSHOTS"
FIRST_LOAD_MS = 120_000   # headless Chromium and JupyterLab 4 on a small machine: the first page load is slow
RUN_ALL_MS = 180_000      # a kernel start and every cell of the notebook
STEP_MS = 60_000          # a click and its answer from the kernel (the whole test suite may share the cores)


# --- JupyterLab, started for this test -------------------------------------------------------------------------

def _lab_settings(folder: Path):
    "User settings for a quiet, predictable JupyterLab: no news pop-up, every cell in the page"
    settings = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                                   "checkForUpdates": False},
                "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"}}
    for name, values in settings.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(values))


@pytest.fixture
def lab(tmp_path):
    "JupyterLab on a free loopback port, serving tmp_path/notebooks, with its settings and state in tmp_path"
    root, state = tmp_path / "notebooks", tmp_path / "jupyter"
    root.mkdir()
    _lab_settings(state / "settings")
    port, token = free_port(), secrets.token_hex(16)
    environment = {**os.environ, "JUPYTER_RUNTIME_DIR": str(state / "runtime"), "JUPYTER_CONFIG_DIR": str(state / "config"),
                   "JUPYTER_DATA_DIR": str(state / "data"), "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
                   "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"), "IPYTHONDIR": str(state / "ipython")}
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={port}",
               f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = tmp_path / "lab.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=root, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_serving(f"{base_url}/lab?token={token}", process, log_path)
        yield dict(url=base_url, token=token, root=root, log=log_path)
    finally:
        stop_process_group(process)


# --- the browser -------------------------------------------------------------------------------------------------

@pytest.fixture
def browser_page(chromium_executable):
    "A page of Debian's headless Chromium, driven by Playwright"
    if sync_playwright is None:
        skip_or_fail("the `playwright` Python package is not installed: `pip install -e '.[dev]'`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


@contextmanager
def diagnostics_on_failure(page, lab):
    "On a failure, print what the browser and JupyterLab said, and keep a screenshot of the page as it was"
    messages = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: messages.append(f"page error: {error}"))
    try:
        yield
    except BaseException:
        print("--- browser console (last 60 messages) ---", *messages[-60:], sep="\n")
        print("--- JupyterLab log (tail) ---", lab["log"].read_text()[-4000:], sep="\n")
        try:
            keep_screenshot(page, lab["root"].parent / "failure.png")
        except Exception as error:
            print(f"(no screenshot of the failure: {error})")
        raise


def keep_screenshot(page, path: Path) -> Path:
    "Save a screenshot of the page to `path`, and copy it to $MLOPS_KIT_SCREENSHOTS when that is set"
    page.screenshot(path=str(path))
    if os.environ.get(SCREENSHOTS_VARIABLE):
        folder = Path(os.environ[SCREENSHOTS_VARIABLE])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)
    return path


# --- what a learner does in JupyterLab ---------------------------------------------------------------------------

def open_notebook(page, lab, name: str):
    "Open notebook `name` in JupyterLab and wait until its kernel is idle"
    page.goto(f"{lab['url']}/lab/tree/{name}?token={lab['token']}", timeout=FIRST_LOAD_MS)
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=FIRST_LOAD_MS)
    wait_for_idle_kernel(page, FIRST_LOAD_MS)


def wait_for_idle_kernel(page, timeout_ms: int = RUN_ALL_MS):
    "Wait until the notebook's kernel is connected and idle, and no cell is waiting to run (no `[*]` prompt)"
    # The kernel indicator in the toolbar says 'idle' before the kernel has even started: ask JupyterLab itself
    # (the lab runs with --expose-app-in-browser, as JupyterLab's own browser tests do).
    page.wait_for_function("""() => {
        const kernel = window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel;
        const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-InputPrompt')];
        return kernel?.connectionStatus === 'connected' && kernel.status === 'idle'
               && !prompts.some(prompt => prompt.textContent.includes('*'));
    }""", timeout=timeout_ms)


def menu_command(page, menu: str, command: str):
    "Click a menu of JupyterLab's menu bar, then one of its items, named by its JupyterLab command"
    page.locator("#jp-MainMenu").get_by_role("menuitem", name=menu, exact=True).click()
    page.locator(f".lm-Menu-item[data-command='{command}']").click()


def confirm_dialog(page):
    "Accept the dialog JupyterLab shows (e.g. 'Restart Kernel?')"
    page.locator(".jp-Dialog .jp-mod-accept").click(timeout=STEP_MS)
    page.locator(".jp-Dialog").wait_for(state="detached", timeout=STEP_MS)


def the_question(page, exercise: str):
    "The multiple-choice question of `exercise`, as displayed in the page (the newest one)"
    return page.locator(f".mlops-kit-question.mlops-kit-exercise-{exercise}:not([data-stale])").last


def radio_button(question, option: str):
    "The radio button of `option` in the question"
    return question.locator(".mlops-kit-choice").get_by_role("radio", name=option, exact=True)


def choose_and_check(question, option: str):
    "Choose `option` among the question's radio buttons, then click its Check button"
    radio_button(question, option).check()
    question.locator(".mlops-kit-check").click()


def feedback_of(question):
    "The question's feedback (a locator: `expect` waits for its text to change)"
    return question.locator(".mlops-kit-feedback")


def save_notebook(page):
    "File > Save Notebook, and wait until the tab no longer shows unsaved changes"
    menu_command(page, "File", "docmanager:save")
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current.jp-mod-dirty").wait_for(state="detached",
                                                                                             timeout=STEP_MS)


def mlops_kit_grade(notebook: Path, output: Path) -> dict:
    "Run `mlops-kit grade` on `notebook` and return its scorecard (the exit code is 1 if any exercise failed)"
    command = [MLOPS_KIT, "grade", str(notebook), "--solutions", str(SOLUTIONS), "--output", str(output)]
    process = subprocess.run(command, capture_output=True, text=True, timeout=900)
    scorecard = output / f"{notebook.stem}.scorecard.json"
    assert process.returncode in (0, 1) and scorecard.exists(), \
        f"{' '.join(command)} exited with {process.returncode}:\n{process.stdout}\n{process.stderr}"
    return json.loads(scorecard.read_text())


def run_and_find_question(page, menu: str = "Run", command: str = "runmenu:run-all", previous=None, confirm: bool = False):
    "Run the notebook with a menu command; the exercise's question once the run has drawn it (again, if `previous` was shown) and the kernel is idle"
    if previous is not None: previous.evaluate("element => element.setAttribute('data-stale', '')")  # the old view, until it is replaced
    menu_command(page, menu, command)
    if confirm: confirm_dialog(page)
    question = the_question(page, EXERCISE_ID)
    question.wait_for(timeout=RUN_ALL_MS)
    wait_for_idle_kernel(page)
    return question


# --- the test ----------------------------------------------------------------------------------------------------

def test_a_learner_answers_a_multiple_choice_exercise_in_jupyterlab(browser_page, lab, tmp_path):
    page, notebook = browser_page, lab["root"] / EXERCISE_NOTEBOOK.name
    shutil.copy(EXERCISE_NOTEBOOK, notebook)  # tests work on a copy: the repository is never written to
    answer_file = notebook.with_name(f"{notebook.stem}.answers.json")

    with diagnostics_on_failure(page, lab):
        open_notebook(page, lab, notebook.name)
        question = run_and_find_question(page)

        # A wrong answer, then the right one: the feedback says so each time.
        choose_and_check(question, WRONG_OPTION)
        expect(feedback_of(question)).to_have_text(re.compile(r"^\s*Not yet"), timeout=STEP_MS)
        choose_and_check(question, RIGHT_OPTION)
        expect(feedback_of(question)).to_have_text(re.compile(r"^\s*Correct"), timeout=STEP_MS)
        question.evaluate("element => element.scrollIntoView({block: 'center'})")
        screenshot = keep_screenshot(page, tmp_path / f"{notebook.stem}.{EXERCISE_ID}.png")
        assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and screenshot.stat().st_size > 10_000

        # Every change of the answer was saved at once, in the answer file next to the notebook.
        assert answer_file.exists(), f"no answer file {answer_file.name}: {sorted(p.name for p in lab['root'].iterdir())}"
        saved = AnswerStore(answer_file).get(EXERCISE_ID)
        assert saved and saved["answer"] == RIGHT_OPTION, f"the answer file holds {saved!r} for {EXERCISE_ID}"

        # A kernel restart and a re-run: the question comes back with the saved answer chosen.
        question = run_and_find_question(page, "Kernel", "runmenu:restart-and-run-all", previous=question, confirm=True)
        expect(radio_button(question, RIGHT_OPTION)).to_be_checked(timeout=STEP_MS)
        expect(radio_button(question, WRONG_OPTION)).not_to_be_checked()
        save_notebook(page)

    # The grader runs the saved notebook with its answer file, and counts the answer.
    scorecard = mlops_kit_grade(notebook, tmp_path / "grades")
    graded = {row["exercise"]: row for row in scorecard["exercises"]}
    assert EXERCISE_ID in graded, f"the scorecard has no {EXERCISE_ID!r}: {sorted(graded)}"
    row = graded[EXERCISE_ID]
    assert row["passed"], f"{EXERCISE_ID} failed when graded: {row['message']}"
    assert row["points"] == row["max_points"] > 0


def test_a_wrong_answer_reads_as_a_short_message_a_restored_answer_shows_its_result_and_hint_gives_the_next(browser_page, lab):
    page, notebook = browser_page, lab["root"] / EXERCISE_NOTEBOOK.name
    shutil.copy(EXERCISE_NOTEBOOK, notebook)

    with diagnostics_on_failure(page, lab):
        open_notebook(page, lab, notebook.name)
        question = run_and_find_question(page)
        radio_button(question, WRONG_OPTION).check()        # answered (and saved), not checked

        # The notebook run again: the widget comes back with the saved answer and its verdict, and the check cell fails
        # with the kit's short message, not a traceback.
        question = run_and_find_question(page, previous=question)
        expect(feedback_of(question)).to_have_text(re.compile(r"^\s*Your saved answer is back\. Not yet\. .*Hint 1 of"), timeout=STEP_MS)
        failure = page.locator(".jp-OutputArea-output").filter(has_text=f"{EXERCISE_ID}: not right yet").last
        expect(failure).to_be_visible(timeout=STEP_MS)
        text = failure.inner_text()
        assert "Traceback" not in text and ".py" not in text and len(text.strip().splitlines()) <= 3, text
        assert "Change your answer in the widget above" in text, text

        # The Hint button: the next hint, without a wrong try.
        question.locator(".mlops-kit-hint").click()
        expect(feedback_of(question)).to_contain_text("Hint 2 of", timeout=STEP_MS)


def test_a_learner_decides_a_still_viable_review_and_reads_why_the_answer_is_right(browser_page, lab):
    "The loop back's 'still viable?' review: a wrong decision, then the right one, whose feedback says why it is right"
    source, exercise, wrong, right = REPO_ROOT / "exercises" / "06_the_loop_back_practice.ipynb", "loop-viable-august", "retrain", "keep"
    page, notebook = browser_page, lab["root"] / source.name
    shutil.copy(source, notebook)

    def run_from(text: str, command: str):
        "Select the code cell that contains `text`, then run a command of the Run menu from it"
        page.locator(".jp-NotebookPanel .jp-CodeCell").filter(has_text=text).first.locator(".jp-InputArea-editor").click()
        menu_command(page, "Run", command)

    with diagnostics_on_failure(page, lab):
        open_notebook(page, lab, notebook.name)
        # The unanswered exercises above the review fail their checks, and a failing cell stops the run: run the
        # setup cell, then the review's cells from its record down (they stop at the review's own check cell).
        run_from("answers = AnswerStore(", "notebook:run-cell")
        wait_for_idle_kernel(page)
        run_from("def monitoring_record(", "notebook:run-all-below")
        question = the_question(page, exercise)
        question.wait_for(timeout=RUN_ALL_MS)
        wait_for_idle_kernel(page)

        choose_and_check(question, wrong)
        expect(feedback_of(question)).to_have_text(re.compile(r"^\s*Not yet"), timeout=STEP_MS)
        choose_and_check(question, right)
        expect(feedback_of(question)).to_have_text(re.compile(r"^\s*Correct"), timeout=STEP_MS)
        expect(feedback_of(question)).to_contain_text("July and August meet every criterion again", timeout=STEP_MS)

    saved = AnswerStore(notebook.with_name(f"{notebook.stem}.answers.json")).get(exercise)
    assert saved and saved["answer"] == right, f"the answer file holds {saved!r} for {exercise}"
