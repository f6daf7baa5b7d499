"""Grading a notebook with `mlops_kit.practice.grade` against a plain `pytest --nbval-lax` run of the same notebook.

Grading restores the question and check cells from the solution (hidden checks included), puts a guard cell before each
check cell (the check functions re-imported), runs the notebook through pytest's nbval plugin in a subprocess with a
per-cell timeout, and reads the JUnit report into a scorecard. The peer is what a learner
runs to check their own work: `python -m pytest --nbval-lax NOTEBOOK`. Both run on the solution notebook of each
exercise in solutions/ (every check runs), alternately, --rounds times; the medians and their ratio are printed.
Target: grading costs at most 1.3x the plain run.

    python bench/grading.py [--rounds 7]
"""
import argparse, os, platform, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 1.3


def plain_run(notebook: Path) -> float:
    "Seconds for `pytest --nbval-lax notebook` in a fresh process, on a copy (its answer file stays in the scratch folder)"
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / notebook.name
        shutil.copyfile(notebook, copy)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", str(copy), "-q", "-p", "no:cacheprovider"],
                       cwd=scratch, capture_output=True, check=False)
        return time.perf_counter() - started


def graded_run(notebook: Path, solutions: Path) -> float:
    "Seconds for `grade(notebook)`, checks restored, nbval run and scorecard included"
    from mlops_kit.practice import grade
    started = time.perf_counter()
    card = grade(notebook, solutions, timeout=60)
    elapsed = time.perf_counter() - started
    assert card.passed, card.markdown()
    return elapsed


def main(rounds: int):
    solutions = REPO / "solutions"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; {rounds} rounds each, alternating")
    ratios = []
    for notebook in sorted(solutions.rglob("*.ipynb")):
        plain, graded = [], []
        for round_number in range(rounds + 1):  # the first round warms the disk cache and is dropped
            if round_number % 2: plain_seconds, graded_seconds = plain_run(notebook), graded_run(notebook, solutions)
            else: graded_seconds, plain_seconds = graded_run(notebook, solutions), plain_run(notebook)
            if round_number: plain.append(plain_seconds); graded.append(graded_seconds)
        ratio = statistics.median(graded) / statistics.median(plain)
        ratios.append(ratio)
        print(f"{notebook.relative_to(REPO)}: pytest --nbval-lax {statistics.median(plain):.2f} s, grade {statistics.median(graded):.2f} s: "
              f"{ratio:.2f}x (target <= {TARGET}x)")
    verdict = all(ratio <= TARGET for ratio in ratios)
    print("PASS" if verdict else "MISS")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds per notebook and side (7)")
    main(parser.parse_args().rounds)
