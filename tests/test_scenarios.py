"""The exercises that ask a learner to find problems follow the case study's scenario.

What it proves: the worked solutions of those exercises (section 2 of the design practice, the monitoring practice)
earn full points on the "practice" scenario they ship with and on the "capstone" scenario swapped into their setup,
so their answers come from reading the reports, not from a story; their widget seals are the ones the practice
scenario's ground truth gives; and a solution that answers with the lessons' columns and months earns nothing for
them on the practice scenario. The right answers here are read from each scenario's ground truth, never from the
notebooks, and widget seals are recomputed from them for the swapped scenario (grading reads the seals from the
solution's question cells). Grading runs the notebooks, so this file takes a few minutes.
"""
import json, re

import nbformat
import pandas as pd
import pytest

from conftest import REPO_ROOT
from mlops_kit.data import case_study_ground_truth, load_case_study
from mlops_kit.practice import grade, seal, seal_parts

SOLUTIONS = REPO_ROOT / "solutions"
SERVED_MONTHS = [f"{month:%Y-%m}" for month in pd.date_range("2024-07-01", "2025-12-01", freq="MS")]  # what 05 monitors
SWAP = 'scenario="practice"'
SEAL_LITERAL = re.compile(r'seal="sha256:[0-9a-f]{64}"')
PARTS_LITERAL = re.compile(r"parts=\[[^\]]*\]")


def data_problem_columns(truth) -> list:
    "The columns the design checks flag: the missing values, the incident's unit error and the leak, in the options' order"
    flagged = {*truth.columns("missing_values"), *truth.columns("quality_incident"), *truth.columns("leakage")}
    return [column for column in load_case_study(n_rows=2_400).features if column in flagged]


def drift_months(truth) -> list:
    "The served months of the covariate drift: the ones a right threshold makes alert"
    drift = truth.of_kind("covariate_drift")[0]
    return [month for month in SERVED_MONTHS if drift.affects(month)[0]]


def first_months(truth) -> dict:
    "Each story of the monitoring record -> the month its problem began"
    began = {problem.kind: f"{problem.start:%Y-%m}" for problem in truth}
    return {"a broken data pipeline": began["quality_incident"], "new kinds of customers": began["covariate_drift"],
            "customers leave for new reasons": began["concept_drift"]}


# notebook -> exercise -> (the right answer read from a ground truth, its parts for partial feedback or None)
PROBLEM_FINDING = {
    "02_design_practice.ipynb": {
        "design-data-problems": lambda truth: (data_problem_columns(truth), {column: column in data_problem_columns(truth)
                                               for column in load_case_study(n_rows=2_400).features})},
    "05_monitoring_practice.ipynb": {
        "monitoring-threshold": lambda truth: (drift_months(truth), None),
        "monitoring-windows": lambda truth: (first_months(truth), first_months(truth))},
}


def exercise_cells(solution, exercise: str, role: str) -> list:
    return [cell for cell in solution.cells if cell.metadata.get("mlops_kit", {}).get("exercise") == exercise
            and cell.metadata["mlops_kit"].get("role") == role]


def on_scenario(notebook: str, scenario: str):
    "The solution `notebook` with `scenario` swapped into its setup, and its problem-finding questions sealed for that scenario"
    solution = nbformat.read(SOLUTIONS / notebook, as_version=4)
    setups = [cell for cell in solution.cells if SWAP in cell.source]
    assert len(setups) == 1, f"{notebook}: one cell loads the practice scenario, found {len(setups)}"
    setups[0].source = setups[0].source.replace(SWAP, f'scenario="{scenario}"')
    truth = case_study_ground_truth(scenario)
    for exercise, right in PROBLEM_FINDING[notebook].items():
        answer, parts = right(truth)
        [question] = exercise_cells(solution, exercise, "question")
        question.source = SEAL_LITERAL.sub(f'seal="{seal(exercise, answer)}"', question.source)
        if parts is not None: question.source = PARTS_LITERAL.sub("parts=" + json.dumps(seal_parts(exercise, parts)), question.source)
    return solution


def graded(tmp_path, notebook: str, solution) -> dict:
    "Grade `solution` against itself (as the learner's notebook and as the solution): exercise -> its scorecard row"
    (tmp_path / "solutions").mkdir(); (tmp_path / "work").mkdir()
    for folder in ["solutions", "work"]: nbformat.write(solution, tmp_path / folder / notebook)
    card = grade(tmp_path / "work" / notebook, tmp_path / "solutions", timeout=120)
    return {row["exercise"]: row for row in card.exercises}


@pytest.mark.parametrize("notebook", sorted(PROBLEM_FINDING))
def test_the_shipped_seals_are_the_practice_scenarios_answers(notebook):
    "What a learner is graded against is what the practice scenario's ground truth says, not the lessons'"
    shipped = nbformat.read(SOLUTIONS / notebook, as_version=4)
    for exercise, right in PROBLEM_FINDING[notebook].items():
        [question] = exercise_cells(shipped, exercise, "question")
        practice, lessons = right(case_study_ground_truth("practice"))[0], right(case_study_ground_truth("lessons"))[0]
        assert practice != lessons, f"{exercise}: the practice scenario must not have the lessons' answer"
        assert f'seal="{seal(exercise, practice)}"' in question.source, f"{exercise}: seal it for the practice scenario"
    assert sum(SWAP in cell.source for cell in shipped.cells) == 1


@pytest.mark.parametrize("scenario", ["practice", "capstone"])
@pytest.mark.parametrize("notebook", sorted(PROBLEM_FINDING))
def test_the_solutions_find_the_problems_of_any_scenario(notebook, scenario, tmp_path):
    "Run on another scenario, the worked answers read that scenario's reports: full points, hidden checks included"
    rows = graded(tmp_path, notebook, on_scenario(notebook, scenario))
    assert set(PROBLEM_FINDING[notebook]) <= set(rows)
    failed = {exercise: row["message"] for exercise, row in rows.items() if not row["passed"] or row["points"] != row["max_points"]}
    assert failed == {}, failed


@pytest.mark.parametrize("notebook", sorted(PROBLEM_FINDING))
def test_the_lessons_answers_fail_on_the_practice_scenario(notebook, tmp_path):
    "A learner who answers from the lesson's story (its columns and months) earns nothing for the problem-finding exercises"
    solution = nbformat.read(SOLUTIONS / notebook, as_version=4)
    lessons = case_study_ground_truth("lessons")
    remembered = {"design-data-problems": data_problem_columns(lessons), "monitoring-windows": first_months(lessons)}
    for exercise, answer in remembered.items():
        if exercise not in PROBLEM_FINDING[notebook]: continue
        [question], [cell] = exercise_cells(solution, exercise, "question"), exercise_cells(solution, exercise, "answer")
        widget = re.match(r"(\w+) = ", question.source).group(1)
        cell.source = f"### BEGIN SOLUTION\n{widget}.answer = {answer!r}\n### END SOLUTION"
    rows = graded(tmp_path, notebook, solution)
    for exercise in remembered.keys() & PROBLEM_FINDING[notebook].keys():
        assert not rows[exercise]["passed"] and rows[exercise]["points"] == 0, rows[exercise]
    others = {exercise: row["passed"] for exercise, row in rows.items() if exercise not in remembered}
    assert others and all(others.values()), others  # only the remembered answers fail
