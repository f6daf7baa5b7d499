"""`mlops-kit validate` of one exercise notebook: this code against the release before validation was made cheaper.

Validating a notebook grades it 9 times: the solution, the untouched exercise and 7 mechanical cheats, two of which end
only by the short cell timeout (an endless loop, os._exit). Each run was a pytest process of its own, and starting pytest
loaded every plugin installed beside it; now grading loads nbval alone and the runs of one timeout share at most `jobs`
pytest processes (each notebook still has a kernel and a folder of its own). The peer is the code before that change,
taken from git (`git archive` of the commit before the one that brought `_run_nbval_many`, or --old REV) into a
temporary folder and run with PYTHONPATH pointing at it, so its pytest processes and kernels import it too. Both sides
validate the same copy of the notebook, alternately, after a dropped warm-up round, as subprocesses; both must give the
same verdicts. Medians, their ratio, and the machine's load average are printed.

    python bench/validate.py [--notebook solutions/00_template.ipynb] [--rounds 3] [--old REV] [--jobs N]
"""
import argparse, json, os, platform, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VALIDATE = """import json, sys
from mlops_kit.practice import validate
found = validate(sys.argv[1], sys.argv[2], jobs={jobs})
print(json.dumps([[row["notebook"], row["check"], row["passed"]] for row in found.rows]))
"""


def previous_release(rev: str | None) -> str:
    "The commit to compare with: `rev`, or the parent of the first commit whose grading has `_run_nbval_many`"
    if rev: return rev
    first = subprocess.run(["git", "log", "--reverse", "--format=%H", "-S_run_nbval_many", "--", "mlops_kit/practice/grading.py"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return f"{first[0]}^" if first else "HEAD"  # before the change is committed, HEAD is the release before it


def export(rev: str, folder: Path) -> Path:
    "The package `mlops_kit` as it was at `rev`, written under `folder`"
    archive = subprocess.run(["git", "archive", rev, "mlops_kit"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def kit_copy(notebook: Path, folder: Path) -> tuple[Path, Path]:
    "A solutions folder holding `notebook`, and its exercises as assign writes them"
    from mlops_kit.practice import assign
    (folder / "solutions").mkdir(parents=True)
    shutil.copyfile(notebook, folder / "solutions" / notebook.name)
    assign(folder / "solutions", folder / "exercises")
    return folder / "solutions", folder / "exercises"


def timed_validate(code: Path, solutions: Path, exercises: Path, jobs: int) -> tuple[float, list]:
    "Seconds for validating with the package under `code`, and its verdicts"
    environment = {**os.environ, "PYTHONPATH": str(code)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", VALIDATE.format(jobs=jobs), str(solutions), str(exercises)], env=environment,
                          capture_output=True, text=True, cwd=solutions.parent)
    elapsed = time.perf_counter() - started
    if done.returncode: raise SystemExit(f"validate failed with the code under {code}:\n{done.stderr[-2000:]}")
    return elapsed, json.loads(done.stdout.strip().splitlines()[-1])


def startup(autoload: bool, notebook: Path) -> float:
    "Seconds to start pytest and collect `notebook` with nbval: every plugin installed, or nbval alone"
    environment = {**os.environ} if autoload else {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "--nbval-lax", str(notebook)]
    if not autoload: command[3:3] = ["-p", "nbval.plugin"]
    started = time.perf_counter()
    subprocess.run(command, env=environment, capture_output=True, cwd=notebook.parent, check=True)
    return time.perf_counter() - started


def main(notebook: Path, rounds: int, rev: str | None, jobs: int):
    from mlops_kit.practice import CHEATS, ENDS_BY_TIMEOUT
    rev = previous_release(rev)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average "
          f"{os.getloadavg()[0]:.1f} at the start; jobs={jobs}; {rounds} rounds each, alternating; old = {rev}")
    runs = 2 + len(CHEATS)
    print(f"what runs: {runs} gradings of {notebook.name} (solution, untouched, {len(CHEATS)} cheats; {len(ENDS_BY_TIMEOUT)} end "
          f"only by the short timeout); old: {runs} pytest processes; new: at most {min(jobs, runs - len(ENDS_BY_TIMEOUT)) + min(jobs, len(ENDS_BY_TIMEOUT))}")
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as scratch:
        (Path(scratch) / "old").mkdir()
        old_code = export(rev, Path(scratch) / "old")
        solutions, exercises = kit_copy(notebook, Path(scratch) / "kit")
        starts = {autoload: statistics.median(startup(autoload, exercises / notebook.name) for _ in range(3)) for autoload in (True, False)}
        print(f"starting pytest and collecting the notebook: every plugin {starts[True]:.2f} s, nbval alone {starts[False]:.2f} s")
        old, new = [], []
        for round_number in range(rounds + 1):  # the first round warms the disk cache and is dropped
            sides = [("old", old_code), ("new", REPO)] if round_number % 2 else [("new", REPO), ("old", old_code)]
            verdicts = {}
            for side, code in sides:
                seconds, verdicts[side] = timed_validate(code, solutions, exercises, jobs)
                if round_number: (old if side == "old" else new).append(seconds)
            assert verdicts["old"] == verdicts["new"], f"the two sides disagree: {verdicts}"
            assert all(passed for _, _, passed in verdicts["new"]), verdicts["new"]
        ratio = statistics.median(old) / statistics.median(new)
        print(f"{notebook.relative_to(REPO)}: old {statistics.median(old):.1f} s (runs {', '.join(f'{s:.1f}' for s in old)}), "
              f"new {statistics.median(new):.1f} s (runs {', '.join(f'{s:.1f}' for s in new)}): new is {ratio:.2f}x faster; "
              f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=REPO / "solutions" / "00_template.ipynb", help="the solution notebook to validate")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per side (3)")
    parser.add_argument("--old", default=None, help="the git revision to compare with (default: the release before the change)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="validate's jobs, both sides (default: the cores)")
    arguments = parser.parse_args()
    main(arguments.notebook.resolve(), arguments.rounds, arguments.old, arguments.jobs)
