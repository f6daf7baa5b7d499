"""The capstone, graded from the project's own records (its journal and model registry), through the kit's grading.

What it proves: the solution earns every point; a notebook whose answers record nothing (an empty journal) earns none,
each stage saying what its records lack; a journal whose development gate claims a held-out score the promoted
champion does not reach loses the champion's points (the hidden check loads the champion and scores it) and nothing
else. The three notebooks are graded side by side, as `mlops-kit grade` grades them. The checks themselves, each on a
forged journal, are tested beside their code in nbs/practice/04_capstone.ipynb.
"""
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest

from conftest import REPO_ROOT
from mlops_kit.practice import grade

SOLUTIONS = REPO_ROOT / "solutions"
CAPSTONE = "07_capstone.ipynb"
STAGES = {"capstone-criteria": 2, "capstone-design-gate": 2, "capstone-experiments": 2, "capstone-champion": 3,
          "capstone-monitoring": 3, "capstone-decisions": 2}
REAL_GATE = 'gate(project, "development", "go", checks, measured=measured,'
FORGED_GATE = 'gate(project, "development", "go", checks, measured={"cost_per_1000": 20_000.0, "recall": 0.95},'


def answer_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.metadata.get("mlops_kit", {}).get("role") == "answer"]


def solution() -> nbformat.NotebookNode:
    return nbformat.read(SOLUTIONS / CAPSTONE, as_version=4)


def forged_claim():
    "The solution, but its development gate records a held-out score that no model measured: a better cost and recall"
    notebook = solution()
    cell = next(cell for cell in answer_cells(notebook) if REAL_GATE in cell.source)
    cell.source = cell.source.replace(REAL_GATE, FORGED_GATE)
    return notebook


def nothing_recorded():
    "The solution's functions, each doing nothing: the project's journal stays empty"
    notebook = solution()
    for cell in answer_cells(notebook):
        signature = cell.source.split("### BEGIN SOLUTION")[0].rstrip()
        cell.source = signature + "\n    return None\n"
    return notebook


SUBMISSIONS = {"solution": solution, "forged claim": forged_claim, "nothing recorded": nothing_recorded}


@pytest.fixture(scope="module")
def scorecards(tmp_path_factory):
    "Each submission graded with its hidden checks, two at a time, as `mlops-kit grade` grades a learner's notebook"
    folders = {name: tmp_path_factory.mktemp(name.replace(" ", "-")) for name in SUBMISSIONS}  # made here: mktemp is not thread-safe
    def graded(name):
        nbformat.write(SUBMISSIONS[name](), folders[name] / CAPSTONE)
        return name, grade(folders[name] / CAPSTONE, SOLUTIONS, timeout=120)
    with ThreadPoolExecutor(max_workers=2) as pool: return dict(pool.map(graded, SUBMISSIONS))


def points(card) -> dict:
    return {row["exercise"]: row["points"] for row in card.exercises}


def test_the_capstone_has_its_stages_and_points():
    checks = [cell for cell in solution().cells if cell.metadata.get("mlops_kit", {}).get("role") == "check"]
    totals = {}
    for cell in checks: totals[cell.metadata["mlops_kit"]["exercise"]] = totals.get(cell.metadata["mlops_kit"]["exercise"], 0) + cell.metadata["mlops_kit"]["points"]
    assert totals == STAGES
    hidden = {cell.metadata["mlops_kit"]["exercise"] for cell in checks if "### BEGIN HIDDEN CHECKS" in cell.source}
    assert hidden == {"capstone-champion", "capstone-monitoring"}  # the two that recompute what the journal claims


def test_the_solution_earns_every_point(scorecards):
    card = scorecards["solution"]
    assert points(card) == STAGES and card.points == card.max_points == sum(STAGES.values()), card.markdown()
    assert all(row["hidden"] == "passed" for row in card.exercises if row["exercise"] in ("capstone-champion", "capstone-monitoring"))


def test_an_empty_journal_earns_nothing(scorecards):
    card = scorecards["nothing recorded"]
    assert card.points == 0 and not any(row["passed"] for row in card.exercises), card.markdown()
    messages = {row["exercise"]: row["message"] for row in card.exercises}
    assert "holds no success criteria" in messages["capstone-criteria"] and "Hint" in messages["capstone-criteria"]
    assert "no design 'go'" in messages["capstone-design-gate"]
    assert "no study after the design gate" in messages["capstone-experiments"]
    assert "No model was promoted" in messages["capstone-champion"]
    assert "no alert after the development gate" in messages["capstone-monitoring"]


def test_a_journal_claiming_a_score_the_champion_does_not_reach_loses_those_points(scorecards):
    card = scorecards["forged claim"]
    champion = next(row for row in card.exercises if row["exercise"] == "capstone-champion")
    assert champion["points"] == 0 and champion["visible"] == "passed" and champion["hidden"] == "failed", card.markdown()
    assert "records cost_per_1000 = 20,000 on the held-out months, but the champion" in champion["message"]
    assert points(card) == {**STAGES, "capstone-champion": 0}  # every other stage's records are true, and count
