"""Design-phase tools: phase checklists, the ML Test Score, viability gates, the added-value check, the widget form
and phase reports. The unit-level checks of the items, the ML Test Score, careless inputs and gate arguments are in
the design notebooks, beside the code they test."""
import json, subprocess, sys, warnings

import numpy as np
import pandas as pd
import pytest

from mlops_kit.design import (DESIGN_ITEMS, DEPLOYMENT_ITEMS, DEVELOPMENT_ITEMS, ML_TEST_SCORE_ITEMS, AddedValue,
                                  Checklist, ChecklistItem, ChecklistView, GateRefused, MLTestScore, Status,
                                  UnknownItemError, assess_added_value, gate, ml_test_score, ml_test_score_band,
                                  phase_checklist, phase_report)
from mlops_kit.data import load_case_study
from mlops_kit.lifecycle import Criteria, MetricRegistry, Phase, Project, Verdict, cost_metric


@pytest.fixture
def journal(tmp_path):
    return tmp_path / "churn.journal.json"


@pytest.fixture
def project(journal):
    return Project(journal, name="churn")


@pytest.fixture
def registry():
    "A fresh registry with the case study's cost metric, so tests do not touch the shared one"
    registry = MetricRegistry.default()
    registry.register(cost_metric("churn_cost_per_1000", false_positive_cost=50, false_negative_cost=500))
    return registry


@pytest.fixture
def criteria(registry):
    return Criteria("churn_cost_per_1000 <= 32000", ["recall >= 0.8"], registry=registry)


def rubric_with(section_points: dict) -> MLTestScore:
    "A rubric whose sections score `section_points` (section -> points, in halves): automated tests, then one manual"
    rubric = ml_test_score()
    for section, points in section_points.items():
        ids = [item.id for item in ML_TEST_SCORE_ITEMS if item.section == section]
        automated, half = int(points), points % 1 == 0.5
        for item_id in ids[:automated]: rubric.set(item_id, "automated")
        if half: rubric.set(ids[automated], "manual")
    return rubric


def close_required(checklist, status="manual"):
    for item in checklist.open_required(): checklist.set(item.id, status)
    return checklist


# --- persistence through the journal -----------------------------------------------------------------------------

def test_answers_survive_a_new_project_object_and_a_new_checklist(project, journal):
    design = phase_checklist("design", project)
    design.set("problem-context", "manual", notes="retention team", evidence="docs/context.md")
    design.set("risks", "not_applicable", reason="internal pilot")
    design.set("problem-context", "automated")             # history: two records for one item, the last wins
    reopened = phase_checklist("design", Project.open(journal))
    pd.testing.assert_frame_equal(reopened.table(), design.table())
    assert reopened.answer("problem-context").notes == "retention team" and reopened.status("problem-context") is Status.automated
    assert reopened.answer("risks").reason == "internal pilot"
    records = Project(journal).records("checklist", "design")
    assert [record.data["item"] for record in records] == ["problem-context", "risks", "problem-context"]
    assert records[1].data == {"item": "risks", "status": "not_applicable", "notes": "", "evidence": "", "reason": "internal pilot"}
    assert phase_checklist("development", Project(journal)).closed_count == 0     # another checklist's name


def test_two_checklists_on_one_journal_keep_each_others_answers(journal):
    first, second = phase_checklist("design", Project(journal)), phase_checklist("design", Project(journal))
    first.set("problem-context", "manual")
    second.set("data-quality", "automated")
    first.set("key-metrics", "manual", notes="from the first notebook")
    assert first.status("data-quality") is Status.automated       # read back from the journal before writing
    second.refresh()
    assert second.status("key-metrics") is Status.manual
    third = phase_checklist("design", Project(journal))
    assert {item.id for item in third if third.answer(item.id).closed} == {"problem-context", "data-quality", "key-metrics"}


def test_ml_test_score_round_trips_and_separate_names_stay_apart(project, journal):
    ml_test_score(project).set("infra-1", "automated")
    ml_test_score(project, name="ml-test-score-v2").set("infra-1", "manual")
    assert ml_test_score(Project(journal)).status("infra-1") is Status.automated
    assert ml_test_score(Project(journal), name="ml-test-score-v2").section_scores().score["Infrastructure"] == 0.5


def test_a_broken_record_is_a_clear_error_and_an_unknown_item_a_warning(project, journal):
    project.add_record("checklist", "design", {"item": "problem-context", "status": "finished"})
    before = journal.read_bytes()
    with pytest.raises(ValueError, match="Journal record 1 \\(checklist 'design'.*Unknown status 'finished'"):
        phase_checklist("design", project)
    assert journal.read_bytes() == before
    other = Project(journal.parent / "other.journal.json")
    other.add_record("checklist", "design", {"item": "retired-item", "status": "manual"})
    with pytest.warns(UserWarning, match="answers item 'retired-item'"):
        assert phase_checklist("design", other).closed_count == 0


# --- the widget form ---------------------------------------------------------------------------------------------

def test_widget_changes_reach_the_checklist_and_the_journal(project, journal):
    view = ChecklistView(phase_checklist("design", project))
    view.status_controls["problem-context"].value = "automated"
    view.notes_inputs["problem-context"].value = "nightly job"
    view.reason_inputs["risks"].value = "internal pilot"
    view.status_controls["risks"].value = "not_applicable"
    reopened = phase_checklist("design", Project(journal))
    assert reopened.status("problem-context") is Status.automated and reopened.answer("problem-context").notes == "nightly job"
    assert reopened.answer("risks") == view.checklist.answer("risks") and reopened.answer("risks").reason == "internal pilot"
    view.reason_inputs["risks"].value = "internal pilot, no personal data"
    assert phase_checklist("design", Project(journal)).answer("risks").reason == "internal pilot, no personal data"
    assert view.progress_bar.value == pytest.approx(2 / 7) and "2 of 7 items closed" in view.score_label.value


def test_an_invalid_widget_action_shows_the_error_reverts_and_changes_nothing(project, journal):
    view = ChecklistView(phase_checklist("design", project))
    view.status_controls["risks"].value = "manual"
    before, table = journal.read_bytes(), view.checklist.table()
    view.status_controls["risks"].value = "not_applicable"          # no reason: refused, and no exception
    assert view.status_controls["risks"].value == "manual"
    assert "Not saved: Item 'risks': 'not_applicable' needs a reason" in view.message.value
    assert journal.read_bytes() == before
    pd.testing.assert_frame_equal(view.checklist.table(), table)
    pd.testing.assert_frame_equal(phase_checklist("design", Project(journal)).table(), table)


def test_an_emptied_reason_is_refused_and_the_box_reverts(project, journal):
    view = ChecklistView(phase_checklist("design", project))
    view.reason_inputs["risks"].value = "internal pilot"            # not applicable yet: held in the box only
    assert Project(journal).records("checklist") == []
    view.status_controls["risks"].value = "not_applicable"
    before, table = journal.read_bytes(), view.checklist.table()
    view.reason_inputs["risks"].value = ""
    assert view.reason_inputs["risks"].value == "internal pilot" and "needs a reason" in view.message.value
    assert journal.read_bytes() == before
    pd.testing.assert_frame_equal(view.checklist.table(), table)


def test_the_gate_button_refuses_then_records(project):
    view = ChecklistView(phase_checklist("design", project))
    view.verdict.value = "go"
    view.gate_button.click()
    assert "Cannot record 'go' for the design phase" in view.message.value and "ml-added-value: ML adds value" in view.message.value
    assert project.decisions == [] and view.last_decision is None
    for item in view.checklist.open_required(): view.status_controls[item.id].value = "manual"
    assert view.progress_bar.value == pytest.approx(6 / 7) and view.progress_bar.bar_style == "success"
    view.evidence_input.value = "stakeholders agree"
    view.gate_button.click()
    assert "Recorded: Decision(design: go" in view.message.value and project.phase is Phase.development
    assert project.decisions[-1].evidence == "stakeholders agree" and view.last_decision == project.decisions[-1]


def test_the_gate_button_records_an_iterate_with_its_return_phase(project):
    project.decide("go", evidence="the design gate was passed")
    development = phase_checklist("development", project)
    view = ChecklistView(development)
    view.verdict.value = "iterate"
    view.gate_button.click()
    assert "pass return_to" in view.message.value and len(project.decisions) == 1
    view.return_to.value = "design"
    view.gate_button.click()
    assert project.decisions[-1].return_to is Phase.design and "Recorded" in view.message.value
    before = project.path.read_bytes()
    view.gate_button.click()  # a second click: the project is back in design, so a development decision is out of date
    assert "out of date" in view.message.value and project.path.read_bytes() == before


def test_the_view_of_the_ml_test_score_offers_no_not_applicable(project):
    view = ChecklistView(ml_test_score(project))
    assert [value for _, value in view.status_controls["data-1"].options] == ["not_done", "manual", "automated"]
    assert view.reason_inputs == {} and len(view.status_controls) == 28
    view.status_controls["data-1"].value = "automated"
    assert ml_test_score(project).status("data-1") is Status.automated and "ML Test Score" in view.score_label.value
    view.gate_button.click()                                        # no phase: a message, no exception
    assert "No gate here" in view.message.value


def test_the_view_refreshes_from_another_notebook_and_displays_as_its_widget(project, journal):
    view = ChecklistView(phase_checklist("design", project))
    phase_checklist("design", Project(journal)).set("key-metrics", "automated", notes="from elsewhere")
    view.refresh()
    assert view.status_controls["key-metrics"].value == "automated" and view.notes_inputs["key-metrics"].value == "from elsewhere"
    assert "application/vnd.jupyter.widget-view+json" in view._repr_mimebundle_()
    with pytest.raises(ValueError, match="not saved in a journal"): ChecklistView(phase_checklist("design"), project=project)


# --- reports -----------------------------------------------------------------------------------------------------

def test_report_shows_items_scores_criteria_and_decisions(registry, criteria, tmp_path):
    project = Project(tmp_path / "report.journal.json", name="churn", registry=registry)   # keeps the shared registry untouched
    project.set_criteria(criteria)
    design = close_required(phase_checklist("design", project))
    design.set("risks", "not_applicable", reason="pilot | internal")
    gate(project, "design", "go", design, evidence="all closed")
    rubric = rubric_with({"Data": 2, "Model": 1.5, "Infrastructure": 3, "Monitoring": 2})
    report = phase_report(project, [design, rubric], measured={"churn_cost_per_1000": 29_000, "recall": 0.91})
    markdown, page = report.to_markdown(), report.to_html()
    for expected in ("# Phase report: churn", "Current phase: development", "## Checklist design (design phase)",
                     "| ml-added-value | Value | ML adds value", "reason: pilot \\| internal", "Progress 100%",
                     "ML Test Score 1.5: a first pass at basic productionization", "| Model | 5 | 1 | 1 | 1.5 |",
                     "## Success criteria, evaluated", "| recall | >= | 0.8 | 0.91 | True |", "| design | go |  | all closed |"):
        assert expected in markdown, expected
    for expected in ("<td>stakeholders-decision</td>", "<td>Infrastructure</td>", "<td>churn_cost_per_1000</td>",
                     "<td>all closed</td>", "reason: pilot | internal", "<h3>Decisions</h3>"):
        assert expected in page, expected
    assert page.startswith("<!DOCTYPE html>") and report._repr_html_() in page
    saved = report.save(tmp_path / "gate.md")
    assert saved.read_text() == markdown
    with pytest.raises(FileExistsError, match="pass overwrite=True"): report.save(saved)
    report.save(tmp_path / "gate.html")
    with pytest.raises(ValueError, match="name it '.md'"): report.save(tmp_path / "gate.pdf")


def test_report_defaults_to_the_current_phase_checklist_and_says_what_is_missing(project):
    phase_checklist("design", project).set("problem-context", "manual")
    markdown = phase_report(project).to_markdown()
    assert "## Checklist design (design phase)" in markdown and "1 of 7 items closed" in markdown
    assert "No success criteria set yet." in markdown and "No decision recorded yet." in markdown


# --- does ML add value? ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def case_study():
    return load_case_study()


@pytest.fixture(scope="module")
def assessment(case_study):
    return assess_added_value(case_study)


def test_the_model_beats_the_rule_and_both_naive_baselines_on_cost(assessment):
    costs = assessment.table.set_index("approach").cost_per_1000
    assert list(costs.index) == ["flag nobody", "flag everybody", "rule", "model"]
    assert costs["model"] < costs["rule"] < costs["flag everybody"] < costs["flag nobody"]
    assert costs["flag nobody"] == pytest.approx(75_000) and costs["flag everybody"] == pytest.approx(42_500)
    assert costs["rule"] == pytest.approx(35_650) and costs["model"] == pytest.approx(29_083.33, abs=1)
    assert assessment.ml_adds_value and assessment.best_baseline == "rule"
    assert assessment.saving_interval[0] > 0.1 * costs["rule"]
    assert "so ML adds value" in assessment.statement and "35,650" in assessment.statement


def test_the_assessment_is_honest_in_time_and_leaves_out_the_leak(assessment):
    assert assessment.train_period[1] < assessment.test_period[0]
    assert (str(assessment.train_period[0].date()), str(assessment.test_period[1].date())) == ("2024-01-01", "2024-08-01")
    assert assessment.dropped == ["cancel_page_visits"] and "cancel_page_visits" not in assessment.features
    assert not {"customer_id", "month", "churned"} & set(assessment.features)
    assert 0 < assessment.threshold < 0.5 and assessment.test_rows == 3_000


def test_the_assessment_reproduces_with_the_same_seed(case_study, assessment):
    again = assess_added_value(case_study, resamples=1000)
    pd.testing.assert_frame_equal(again.table, assessment.table)
    assert again.saving_interval == assessment.saving_interval


def test_a_rule_as_good_as_the_model_means_ml_adds_no_value(case_study, assessment):
    model, threshold, features = assessment.model, assessment.threshold, assessment.features
    def model_as_rule(frame):
        "The model itself, as a rule"
        return model.predict_proba(frame[features])[:, 1] >= threshold
    result = assess_added_value(case_study, rule=model_as_rule, resamples=200)
    assert not result.ml_adds_value and result.saving == 0 and result.best_baseline == "rule"
    assert "does not clearly add value" in result.statement and "The model itself, as a rule" in result.table.description.tolist()


@pytest.mark.parametrize("shuffle_seed", [1, 2, 3])
def test_features_without_signal_mean_ml_adds_no_value(case_study, shuffle_seed):
    shuffled = case_study.between(end="2024-09-01")
    target = shuffled.frame[shuffled.target].to_numpy()
    shuffled.frame[shuffled.target] = np.random.default_rng(shuffle_seed).permutation(target)
    assert not assess_added_value(shuffled, resamples=200).ml_adds_value


def test_criteria_pick_the_cost_metric_and_are_checked_per_approach(case_study, criteria, project):
    result = assess_added_value(case_study, criteria=criteria, resamples=200)
    assert result.metric == "churn_cost_per_1000" and result.table.meets_criteria.tolist() == [False, False, False, True]
    assert set(result.measured) == {"churn_cost_per_1000", "recall", "precision"}
    assert criteria.all_passed(result.measured)
    design = close_required(phase_checklist("design", project))
    decision = gate(project, "design", "go", design, criteria=criteria, measured=result.measured)
    assert decision.metrics["criteria.passed"] is True
    assert isinstance(result, AddedValue) and "Added value of ML: yes" in result._repr_html_()


def test_assessment_mistakes_are_clear_errors(case_study, criteria):
    with pytest.raises(ValueError, match="must come before test_end"):
        assess_added_value(case_study, train_end="2024-09-01", test_end="2024-03-01")
    with pytest.raises(ValueError, match="'rmse <= 3' cannot judge a binary model"): assess_added_value(case_study, criteria=Criteria("rmse <= 3"))
    with pytest.raises(TypeError, match="must be a mlops_kit.data.Dataset"): assess_added_value(case_study.frame)
    with pytest.raises(ValueError, match="No rows before train_end \\(2020-01-01\\) to train on"):
        assess_added_value(case_study, train_end="2020-01-01", test_end="2021-01-01")
    with pytest.warns(UserWarning, match="reaches planted problems"):
        assess_added_value(case_study, test_end="2024-10-01", resamples=50)


# --- imports stay light ------------------------------------------------------------------------------------------

def test_importing_checklists_loads_neither_sklearn_nor_ipywidgets():
    probe = ("import sys, json, mlops_kit.design; "
             "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules} & {'sklearn', 'ipywidgets', 'matplotlib'})))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


def test_before_deployment_a_latency_criterion_waits_for_the_service(project, registry):
    "Design and development cannot measure latency: the gate checks the rest and says what deployment must measure"
    criteria = Criteria("churn_cost_per_1000 <= 32000", ["recall >= 0.8", "latency_p95_ms <= 50"], registry=registry)
    measured = {"churn_cost_per_1000": 29_000, "recall": 0.91}
    decision = gate(project, "design", "go", close_required(phase_checklist("design", project)),
                    criteria=criteria, measured=measured)
    assert "criteria: 2 of 2 met" in decision.evidence
    assert "to be measured in deployment: latency_p95_ms <= 50" in decision.evidence
    assert "latency_p95_ms" not in decision.metrics
    assert decision.metrics["criteria.measured_in_deployment"] == ["latency_p95_ms <= 50"]
    report = phase_report(project, phase_checklist("design", project), criteria=criteria, measured=measured)
    assert "Measured in deployment, once the model is served: latency_p95_ms <= 50." in report.to_markdown()
    with pytest.raises(GateRefused, match="recall >= 0.8 \\(measured 0.5\\)"):  # the measurable ones still count
        gate(project, "development", "go", close_required(phase_checklist("development", project)),
             criteria=criteria, measured={"churn_cost_per_1000": 29_000, "recall": 0.5})


# --- issue 13: every careless input is the kit's error, and nothing saved changes ------------------------------------

import hashlib, math, os, stat
from mlops_kit.errors import MlopsKitError, WrongTypeError
from mlops_kit.design import simple_model


def hashes(*paths) -> dict:
    "sha256 of each file's bytes (None for a missing file): compared before and after a refused call"
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None for path in paths}


@pytest.fixture
def saved_report(project, tmp_path):
    "A report, and an earlier report file next to it"
    earlier = tmp_path / "earlier.md"
    earlier.write_text("last week's report, edited by hand")
    return phase_report(project), earlier


@pytest.mark.parametrize("where, overwrite, error, message", [
    (None, False, WrongTypeError, "A report's path is a file name such as 'report.md', got None"),
    (3, False, WrongTypeError, "got 3"),
    ("report.pdf", False, MlopsKitError, "name it '.md' (markdown) or '.html'"),
    ("missing/report.md", False, MlopsKitError, "the folder '{tmp}/missing' does not exist"),
    ("earlier.md/report.md", False, MlopsKitError, "'{tmp}/earlier.md' is a file, not a folder"),
    ("folder.md", True, MlopsKitError, "'{tmp}/folder.md' is a folder"),
    ("earlier.md", False, FileExistsError, "'{tmp}/earlier.md' exists: pass overwrite=True to replace it"),
    ("earlier.md", "yes", WrongTypeError, "overwrite must be True or False, got 'yes'"),
])
def test_saving_a_report_checks_the_path_first_and_leaves_every_file(saved_report, journal, tmp_path, where, overwrite, error, message):
    report, earlier = saved_report
    (tmp_path / "folder.md").mkdir()
    before, listing = hashes(earlier, journal), sorted(tmp_path.iterdir())
    path = tmp_path / where if isinstance(where, str) else where
    with pytest.raises(error) as raised: report.save(path, overwrite=overwrite)
    assert message.format(tmp=tmp_path) in str(raised.value)
    assert hashes(earlier, journal) == before and sorted(tmp_path.iterdir()) == listing


def test_a_report_replaces_a_file_whole_and_never_a_read_only_one(saved_report, tmp_path):
    report, earlier = saved_report
    assert report.save(earlier, overwrite=True).read_text() == report.to_markdown()
    assert not [path for path in tmp_path.iterdir() if "partial" in path.name]     # no temporary file left behind
    earlier.chmod(stat.S_IRUSR)
    before = hashes(earlier)
    try:
        with pytest.raises(MlopsKitError, match="is read-only, so it was left as it is"): report.save(earlier, overwrite=True)
    finally: earlier.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert hashes(earlier) == before


class NeverFitted:
    "A model that fails the test if the assessment fits it: every argument must be checked first"
    def fit(self, features, labels): raise AssertionError("the model was fitted before the arguments were checked")
    def predict_proba(self, features): raise AssertionError("the model was used before the arguments were checked")


@pytest.mark.parametrize("arguments, error, message", [
    (dict(train_end="soon"), MlopsKitError, "train_end 'soon' is not a date written 'YYYY-MM-DD'"),
    (dict(train_end="07/01/2024"), MlopsKitError, "train_end '07/01/2024' is not a date written 'YYYY-MM-DD'"),
    (dict(test_end="2024-02-30"), MlopsKitError, "test_end '2024-02-30' is not a date on the calendar"),
    (dict(test_end="2024-13-45"), MlopsKitError, "test_end '2024-13-45' is not a date"),
    (dict(train_end=["2024-07-01"]), WrongTypeError, "train_end must be a date such as '2024-07-01'"),
    (dict(test_end=20240901), WrongTypeError, "test_end must be a date"),
    (dict(train_end="NaT"), MlopsKitError, "is not a date"),
    (dict(train_end="2024-07-01T00:00+02:00"), MlopsKitError, "has a time zone but the time column 'month' has no time zone"),
    (dict(train_end="2024-09-01", test_end="2024-07-01"), MlopsKitError, "train_end (2024-09-01) must come before test_end (2024-07-01)"),
    (dict(train_end="2023-01-01", test_end="2023-06-01"), MlopsKitError, "No rows before train_end (2023-01-01) to train on: the data runs from 2024-01-01 to 2025-12-01"),
    (dict(train_end="2026-01-01", test_end="2027-01-01"), MlopsKitError, "No rows from train_end (2026-01-01) to test_end (2027-01-01) to test on"),
    (dict(seed=-1), MlopsKitError, "`seed` must be a whole number from 0 to 4,294,967,295, got -1"),
    (dict(seed=1.5), MlopsKitError, "`seed` must be a whole number from 0 to 4,294,967,295, got 1.5"),
    (dict(resamples=0), MlopsKitError, "resamples must be a whole number of at least 1"),
    (dict(resamples="1000"), WrongTypeError, "got '1000'"),
    (dict(min_saving=5), MlopsKitError, "did you mean 0.05?"),
    (dict(min_saving=float("nan")), MlopsKitError, "min_saving is a share of the best non-ML approach's value"),
    (dict(min_saving=-0.1), MlopsKitError, "from 0 up to 1"),
    (dict(exclude=["cancel_page_visit"]), MlopsKitError, "exclude names 'cancel_page_visit', which is not a feature of 'Lumen churn case study'. Did you mean 'cancel_page_visits'?"),
    (dict(exclude=3), WrongTypeError, "exclude must be a list of column names"),
    (dict(rule="month-to-month"), WrongTypeError, "rule must be a function(frame) -> one prediction per row"),
    (dict(rule=lambda frame: frame["inactive_days"] / 30), MlopsKitError, "must return labels, True/False or 1/0 (flag the case or not); it returned 0.0"),
    (dict(rule=lambda frame: np.array(["yes"] * len(frame))), MlopsKitError, "it returned 'yes'"),
    (dict(rule=lambda frame: np.full(len(frame), np.nan)), MlopsKitError, "it returned nan"),
    (dict(rule=lambda frame: np.ones(3)), MlopsKitError, "one label per row (3,000 rows), got an array of shape (3,)"),
    (dict(rule=lambda frame: None), MlopsKitError, "got one value, None"),
    (dict(rule=lambda frame: frame["discount"] > 0), MlopsKitError, "reads the column 'discount', which the data does not have"),
    (dict(criteria="churn_cost_per_1000 <= 32000"), WrongTypeError, "criteria must be a Criteria object"),
])
def test_assessment_arguments_are_checked_before_any_model_is_fitted(case_study, arguments, error, message):
    with pytest.raises(error) as raised: assess_added_value(case_study, **{"model": NeverFitted(), **arguments})
    assert message in str(raised.value)


def test_a_model_without_predict_proba_or_that_cannot_fit_is_named(case_study):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC
    with pytest.raises(WrongTypeError, match="model must be an unfitted classifier with fit and predict_proba"):
        assess_added_value(case_study, model=LinearSVC())
    with pytest.raises(MlopsKitError, match="The model LogisticRegression could not be fitted on the features"):
        assess_added_value(case_study, model=LogisticRegression())     # text columns, no encoding


def with_labels(dataset, labels):
    "A copy of `dataset` whose target is `labels`"
    copy = dataset.between(end="2024-09-01")
    copy.frame = copy.frame.assign(**{copy.target: labels(copy.frame)})
    return copy


@pytest.mark.parametrize("labels, message", [
    (lambda frame: frame.churned.where(frame.month < "2024-07-01", 0), "The 3,000 test rows, from train_end 2024-07-01 to test_end 2024-09-01, all have 'churned' = 0"),
    (lambda frame: frame.churned.where(frame.month >= "2024-07-01", 1), "The 9,000 training rows, before train_end 2024-07-01, all have 'churned' = 1"),
    (lambda frame: frame.churned.map({0: "stays", 1: "churns"}), "positive_label 1 is not a label of 'churned', whose labels are 'stays', 'churns'"),
    (lambda frame: frame.churned.where(frame.index % 7 > 0, np.nan), "of the 9,000 training rows, before train_end 2024-07-01, have no value of the target 'churned'"),
])
def test_periods_without_both_classes_are_refused_before_any_fit(case_study, labels, message):
    with pytest.raises(MlopsKitError) as raised: assess_added_value(with_labels(case_study, labels), model=NeverFitted())
    assert message in str(raised.value)


@pytest.mark.parametrize("costs, error, message", [
    ({"false_positive": -50, "false_negative": 500}, MlopsKitError, "false_positive_cost must be >= 0"),
    ({"false_positive": 50, "false_negative": float("nan")}, MlopsKitError, "false_negative_cost must be a finite number"),
    ({"false_positive": "50", "false_negative": 500}, WrongTypeError, "false_positive_cost must be a number"),
    ({"false_positive": 50}, MlopsKitError, "has costs {'false_positive': 50}, not a cost for each kind of error"),
    (["false_positive", "false_negative"], MlopsKitError, "not a cost for each kind of error"),
])
def test_dataset_costs_that_are_not_costs_are_named(case_study, costs, error, message):
    dataset = case_study.between(end="2024-09-01")
    dataset.costs = costs
    with pytest.raises(error) as raised: assess_added_value(dataset, model=NeverFitted())
    assert message in str(raised.value) and "Lumen churn case study" in str(raised.value)


def test_the_form_refuses_criteria_or_measured_values_of_the_wrong_kind(project, journal):
    design = phase_checklist("design", project)
    before = hashes(journal)
    with pytest.raises(WrongTypeError, match="criteria must be a Criteria object"): ChecklistView(design, criteria="recall >= 0.8")
    with pytest.raises(WrongTypeError, match="measured must be a dict metric -> value"): ChecklistView(design, measured=[0.9])
    with pytest.raises(WrongTypeError, match="ChecklistView shows a Checklist"): ChecklistView("design")
    assert hashes(journal) == before


def test_the_form_shows_a_nan_measurement_as_a_refusal_and_records_nothing(project, journal, criteria):
    view = ChecklistView(close_required(phase_checklist("design", project)), criteria=criteria,
                         measured={"churn_cost_per_1000": 29_000, "recall": float("nan")})
    before = hashes(journal)
    view.verdict.value = "go"
    view._record_decision()
    assert "measured value of 'recall' is nan" in view.message.value
    assert view.last_decision is None and hashes(journal) == before


# --- the `mlops-kit report` command --------------------------------------------------------------------------------

def run_report(*arguments) -> tuple[int, str]:
    "Run `mlops-kit report` in this process: (exit code, what it printed on both streams)"
    import contextlib, io
    from mlops_kit.cli import main
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try: code = main(["report", *map(str, arguments)])
        except SystemExit as stopped: code = stopped.code
    return code, output.getvalue()


@pytest.fixture
def report_folder(project, journal, tmp_path):
    "A journal with an answered checklist, an earlier report, a folder named like a report, and a text file"
    phase_checklist("design", project).set("problem-context", "manual", evidence="interviews")
    (tmp_path / "earlier.md").write_text("last week's report, edited by hand")
    (tmp_path / "reports.md").mkdir()
    (tmp_path / "notes.txt").write_text("my notes")
    return tmp_path


@pytest.mark.parametrize("arguments, message", [
    (["{journal}", "--output", "{tmp}/earlier.md"], "earlier.md' exists: pass --overwrite to replace it, or choose another name"),
    (["{journal}", "--output", "{tmp}/report.pdf"], "name it '.md' (markdown) or '.html'"),
    (["{journal}", "--output", "{tmp}/missing/report.md"], "the folder '{tmp}/missing' does not exist"),
    (["{journal}", "--output", "{tmp}/notes.txt/report.md"], "'{tmp}/notes.txt' is a file, not a folder"),
    (["{journal}", "--output", "{tmp}/reports.md", "--overwrite"], "reports.md' is a folder"),
    (["{journal}", "--output", "{journal}", "--overwrite"], "is the journal itself"),
    (["{journal}", "--overwrite"], "--overwrite replaces the --output file: give --output too"),
    (["{tmp}"], "is a folder: name the project's journal file (JSON) in it"),
    (["{tmp}/notes.txt"], "notes.txt"),
    (["{tmp}/absent.json", "--output", "{tmp}/report.md"], "absent.json: no such journal file"),
])
def test_report_refuses_bad_arguments_in_one_line_and_changes_no_file(report_folder, journal, arguments, message):
    files = [journal, report_folder / "earlier.md", report_folder / "notes.txt"]
    before, listing = hashes(*files), sorted(report_folder.iterdir())
    code, output = run_report(*[argument.format(journal=journal, tmp=report_folder) for argument in arguments])
    assert code == 2 and message.format(tmp=report_folder) in output, output
    assert "Traceback" not in output and "overwrite=True" not in output and len(output.strip().splitlines()) == 1, output
    assert hashes(*files) == before and sorted(report_folder.iterdir()) == listing


def test_report_output_is_checked_before_the_journal_is_read(report_folder, journal):
    journal.write_text('{"format": "mlops-kit journal", "entries": [')        # corrupt: reading it would fail
    code, output = run_report(journal, "--output", report_folder / "earlier.md")
    assert code == 2 and "--overwrite" in output                              # the output's problem, found first
    code, output = run_report(journal)
    assert code == 2 and "churn.journal.json" in output and "Traceback" not in output
    assert journal.read_text() == '{"format": "mlops-kit journal", "entries": ['


def test_report_replaces_an_output_with_overwrite_and_a_broken_record_is_one_line(report_folder, project, journal):
    earlier = report_folder / "earlier.md"
    code, output = run_report(journal, "--output", earlier, "--overwrite", "--phase", "design", "--phase", "design")
    assert code == 0 and earlier.read_text().count("## Checklist design") == 1, output     # a phase named twice, reported once
    project.add_record("checklist", "design", {"item": "risks", "status": "finished"})
    before = hashes(journal, earlier)
    code, output = run_report(journal, "--output", earlier, "--overwrite")
    assert code == 2 and "Journal record" in output and "Unknown status 'finished'" in output and "Traceback" not in output
    assert hashes(journal, earlier) == before


# --- issue 14: does ML add value, for every task and any data ----------------------------------------------------------

from sklearn.metrics import balanced_accuracy_score, root_mean_squared_error
from mlops_kit.data import Dataset, churn_rule, load_real_dataset


class NeverPredicts(NeverFitted):
    "A model with predict, that fails the test if the assessment fits it"
    def predict(self, features): raise AssertionError("the model was used before the arguments were checked")


@pytest.fixture(scope="module")
def wine():
    "The wine data, shuffled: it is sorted by cultivar, and without time the rows are split in their order"
    rows = load_real_dataset("wine").frame.sample(frac=1, random_state=0)
    return Dataset(rows, "cultivar", [name for name in rows.columns if name != "cultivar"], name="wine")


def in_words(cancer, **fields):
    "Breast cancer with its diagnosis as words, 'malignant' (the class to find) or 'benign'"
    frame = cancer.frame.assign(diagnosis=cancer.y.map({1: "malignant", 0: "benign"})).drop(columns="malignant")
    return Dataset(frame, "diagnosis", cancer.features, positive_label="malignant", name="breast cancer in words", **fields)


def large_nuclei(frame):
    "The largest nuclei have a radius above 17"
    return frame["worst radius"] > 17


def upgrades(seed=0, months=12, per_month=150):
    """A multiclass data set the test builds itself: which plan a customer moves to ('basic', 'standard', 'premium'), by
    month, from usage (with gaps), region and tenure; and a leaking column, the plan billed next month"""
    rng = np.random.default_rng(seed)
    n = months * per_month
    usage, tenure = rng.gamma(2, 20, n), rng.integers(1, 60, n)
    region = rng.choice(["north", "south", "east"], n)
    score = usage / 20 + tenure / 30 + (region == "north") + rng.normal(0, 0.8, n)
    plan = np.where(score < 2.5, "basic", np.where(score < 4, "standard", "premium"))
    billed = np.where(rng.random(n) < 0.995, plan, "basic")
    return pd.DataFrame({"month": pd.date_range("2024-01-01", periods=months, freq="MS").repeat(per_month),
                         "usage": np.where(rng.random(n) < 0.1, np.nan, usage), "tenure": tenure, "region": region,
                         "billed_next_month": billed, "plan": plan})


@pytest.fixture(scope="module")
def upgrades_data():
    frame = upgrades()
    return Dataset(frame, "plan", ["usage", "tenure", "region", "billed_next_month"], time_column="month", name="plan upgrades")


def by_hand(train, test, features, task):
    "The simple model fitted by hand on `train`, and its predictions for `test`"
    from mlops_kit.design import simple_model
    model = simple_model([name for name in train.categorical if name in features], [name for name in train.numerical if name in features],
                         0, task).fit(train.frame[features], train.y)
    return model.predict(test.frame[features])


def test_a_multiclass_assessment_compares_with_the_majority_class_on_balanced_accuracy(wine):
    value = assess_added_value(wine, resamples=200)
    train, test = wine.frame.iloc[:134], wine.frame.iloc[134:]
    assert value.test_rows == 44 and value.table.approach.tolist() == ["majority class", "model"] and value.threshold is None
    table = value.table.set_index("approach")
    majority = train.cultivar.value_counts().idxmax()
    assert table.balanced_accuracy["majority class"] == pytest.approx(balanced_accuracy_score(test.cultivar, np.full(44, majority)))
    expected = by_hand(Dataset(train, "cultivar", wine.features), Dataset(test, "cultivar", wine.features), wine.features, "multiclass")
    assert table.balanced_accuracy["model"] == pytest.approx(balanced_accuracy_score(test.cultivar, expected))
    assert value.ml_adds_value and value.metric == "balanced_accuracy" and value.direction == "higher"
    assert value.saving == pytest.approx(table.balanced_accuracy["model"] - table.balanced_accuracy["majority class"])
    assert "a gain of" in value.statement and "held-out cases" in value.statement and value.train_period is None


def test_a_regression_assessment_compares_with_the_mean_on_rmse(diabetes):
    value = assess_added_value(diabetes, resamples=200)
    rows = len(diabetes.frame)
    train, test = diabetes.frame.iloc[:rows - 110], diabetes.frame.iloc[rows - 110:]
    table = value.table.set_index("approach")
    assert value.table.approach.tolist() == ["mean", "model"] and value.metric == "rmse" and value.direction == "lower"
    assert table.rmse["mean"] == pytest.approx(root_mean_squared_error(test.progression, np.full(110, train.progression.mean())))
    expected = by_hand(Dataset(train, "progression", diabetes.features), Dataset(test, "progression", diabetes.features), diabetes.features, "regression")
    assert table.rmse["model"] == pytest.approx(root_mean_squared_error(test.progression, expected))
    assert value.saving == pytest.approx(table.rmse["mean"] - table.rmse["model"]) and value.saving > 0
    assert value.ml_adds_value and "Ridge" in str(value.model) and set(value.measured) == {"rmse", "mae"}


def test_a_regression_rule_and_criteria_on_a_cost_of_errors(diabetes):
    from mlops_kit.lifecycle import error_cost_metric
    registry = MetricRegistry.default()
    registry.register(error_cost_metric("care_cost", over_cost=1, under_cost=3))
    criteria = Criteria("care_cost <= 60", ["mae <= 50"], registry=registry)
    def by_bmi(frame):
        "Progression grows with the body mass index"
        return 150 + 900 * frame["bmi"]
    value = assess_added_value(diabetes, criteria=criteria, rule=by_bmi, resamples=200)
    assert value.metric == "care_cost" and value.table.approach.tolist() == ["mean", "rule", "model"]
    assert list(value.table.columns) == ["approach", "description", "care_cost", "rmse", "mae", "meets_criteria"]
    assert value.best_baseline == "rule" and "Progression grows with the body mass index" in value.table.description.tolist()


def test_binary_labels_in_words_give_the_numbers_of_zero_and_one(cancer):
    costs = {"false_positive": 100, "false_negative": 2_000}
    numbers = assess_added_value(Dataset(cancer.frame, "malignant", cancer.features, costs=costs), rule=large_nuclei, resamples=200)
    words = assess_added_value(in_words(cancer, costs=costs), rule=large_nuclei, resamples=200)
    columns = ["cost_per_1000", "flagged", "recall", "precision"]
    pd.testing.assert_frame_equal(words.table[columns], numbers.table[columns])
    assert (words.saving, words.saving_interval, words.threshold) == (numbers.saving, numbers.saving_interval, numbers.threshold)
    assert words.table.description[:2].tolist() == ["predict 'benign' for every case", "predict 'malignant' for every case"]
    by_labels = assess_added_value(in_words(cancer, costs=costs), rule=lambda frame: np.where(large_nuclei(frame), "malignant", "benign"), resamples=200)
    assert by_labels.table.cost_per_1000.tolist() == words.table.cost_per_1000.tolist()  # a rule may answer with the labels


def test_without_criteria_costs_or_rule_binary_data_is_compared_on_balanced_accuracy(cancer):
    value = assess_added_value(in_words(cancer), resamples=200)
    assert value.metric == "balanced_accuracy" and value.table.approach.tolist() == ["flag nobody", "flag everybody", "model"]
    assert value.table.set_index("approach").balanced_accuracy[["flag nobody", "flag everybody"]].tolist() == [0.5, 0.5]
    assert value.ml_adds_value and 0 < value.threshold < 1


def test_a_multiclass_data_set_with_time_and_gaps_is_split_by_its_dates_and_its_leak_dropped(upgrades_data):
    value = assess_added_value(upgrades_data, train_end="2024-09-01", test_end="2024-12-01", resamples=200)
    assert value.dropped == ["billed_next_month"] and value.features == ["usage", "tenure", "region"]
    assert value.test_rows == 450 and value.test_period == (pd.Timestamp("2024-09-01"), pd.Timestamp("2024-11-01"))
    assert value.train_period == (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-08-01")) and "Sep 2024 to Nov 2024" in value.statement
    assert value.ml_adds_value and value.measured["balanced_accuracy"] > 0.6
    with pytest.raises(MlopsKitError, match="has the time column 'month': give test_end"):
        assess_added_value(upgrades_data, train_end="2024-09-01", model=NeverPredicts())


def test_the_case_study_brings_its_dates_and_rule_and_other_data_must_bring_its_own(case_study, assessment):
    explicit = assess_added_value(case_study, rule=case_study.rule, train_end=case_study.train_end, test_end=case_study.test_end)
    pd.testing.assert_frame_equal(explicit.table, assessment.table)
    own = Dataset(case_study.frame, "churned", case_study.features, time_column="month", costs=dict(case_study.costs))
    with pytest.raises(MlopsKitError, match="give train_end and test_end"): assess_added_value(own, model=NeverFitted())
    without_rule = assess_added_value(own, train_end="2024-07-01", test_end="2024-09-01")
    assert without_rule.table.approach.tolist() == ["flag nobody", "flag everybody", "model"]  # no churn rule outside the case study
    with_rule = assess_added_value(own, rule=churn_rule, train_end="2024-07-01", test_end="2024-09-01")
    pd.testing.assert_frame_equal(with_rule.table.drop(columns="description"), assessment.table.drop(columns="description"))


@pytest.mark.parametrize("share, rows", [(0.1, 57), (0.5, 284)])
def test_test_share_sets_the_last_rows_to_test_on(cancer, share, rows):
    value = assess_added_value(in_words(cancer), test_share=share, resamples=50)
    assert value.test_rows == rows and f"the last {share:.0%}" in value.split


@pytest.mark.parametrize("dataset, arguments, error, message", [
    ("wine", dict(criteria=Criteria("recall >= 0.8")), MlopsKitError, "'recall >= 0.8' cannot judge a multiclass model"),
    ("wine", dict(criteria=Criteria("roc_auc_ovr >= 0.9")), MlopsKitError, "None of the criteria 'roc_auc_ovr >= 0.9' can be computed from predictions"),
    ("diabetes", dict(criteria=Criteria("f1_macro >= 0.5")), MlopsKitError, "cannot judge a regression model"),
    ("wine", dict(rule=lambda frame: frame.alcohol > 13), MlopsKitError, "must return one of the classes '0', '1', '2' for each row; it returned True"),
    ("wine", dict(rule=lambda frame: np.full(len(frame), "gold")), MlopsKitError, "it returned 'gold'"),
    ("diabetes", dict(rule=lambda frame: frame.bmi > 0), MlopsKitError, "must return one number per row, its prediction of 'progression'"),
    ("diabetes", dict(rule=lambda frame: frame.bmi / 0.0), MlopsKitError, "it returned inf"),
    ("words", dict(rule=lambda frame: np.full(len(frame), "yes")), MlopsKitError, "or the labels 'benign', 'malignant'; it returned 'yes'"),
    ("wine", dict(train_end="2024-07-01"), MlopsKitError, "has no time column, so train_end cannot split it"),
    ("wine", dict(train_end="2024-07-01", test_end="2024-09-01"), MlopsKitError, "so train_end and test_end cannot split it"),
    ("wine", dict(test_share=0), MlopsKitError, "test_share is the share of the rows to test on, above 0 and below 1"),
    ("wine", dict(test_share=1), MlopsKitError, "got 1"),
    ("wine", dict(test_share="0.2"), WrongTypeError, "got '0.2'"),
    ("wine", dict(test_share=0.001), MlopsKitError, "test_share 0.001 of 178 rows leaves no rows to test on"),
    ("wine", dict(test_share=0.999), MlopsKitError, "leaves all the rows to test on"),
    ("upgrades", dict(test_share=0.2), MlopsKitError, "test_share is for data without time"),
    ("upgrades", dict(), MlopsKitError, "give train_end and test_end, the dates that end the training rows and the test rows, e.g. train_end='2024-10-01', test_end='2024-12-02'"),
    ("diabetes", dict(model=NeverFitted()), WrongTypeError, "model must be an unfitted regressor with fit and predict (e.g. simple_model(..., task='regression'))"),
])
def test_assessments_of_other_tasks_refuse_what_does_not_fit_before_any_fit(wine, diabetes, cancer, upgrades_data, dataset, arguments, error, message):
    data = {"wine": wine, "diabetes": diabetes, "words": in_words(cancer), "upgrades": upgrades_data}[dataset]
    model = NeverPredicts() if data.task != "binary" else NeverFitted()
    with pytest.raises(error) as raised: assess_added_value(data, **{"model": model, **arguments})
    assert message in str(raised.value)


def test_sorted_rows_and_a_class_missing_from_a_period_are_named_with_the_fix(wine, upgrades_data):
    with pytest.raises(MlopsKitError) as raised: assess_added_value(load_real_dataset("wine"), model=NeverPredicts())
    assert "The 44 test rows, the last 25% of the 178, all have 'cultivar' = 2" in str(raised.value)
    assert "shuffle them first, e.g. frame.sample(frac=1, random_state=0)" in str(raised.value)
    one_plan = Dataset(upgrades_data.frame.assign(plan="basic").where(upgrades_data.frame.month < "2024-09-01", upgrades_data.frame),
                       "plan", upgrades_data.features, time_column="month")
    with pytest.raises(MlopsKitError, match="all have 'plan' = basic: comparing approaches needs cases of two classes at least"):
        assess_added_value(one_plan, train_end="2024-09-01", test_end="2024-12-01", model=NeverPredicts())


def test_costs_on_a_target_that_is_not_binary_are_named(diabetes):
    dataset = Dataset(diabetes.frame, "progression", diabetes.features)
    dataset.costs = {"false_positive": 1, "false_negative": 5}  # set after the Dataset was made, which refuses them
    with pytest.raises(MlopsKitError, match="has costs of false positives and false negatives, which are for a binary target; 'progression' is a regression target"):
        assess_added_value(dataset, model=NeverPredicts())


def test_a_class_model_without_the_needed_method_is_named(wine, cancer):
    from sklearn.svm import LinearSVC
    assert assess_added_value(wine, model=LinearSVC(), resamples=20).table.approach.tolist() == ["majority class", "model"]
    with pytest.raises(WrongTypeError, match="model must be an unfitted classifier with fit and predict_proba .* for the binary target 'diagnosis'"):
        assess_added_value(in_words(cancer), model=LinearSVC())


def test_the_design_lesson_and_the_tours_design_step_give_the_numbers_they_gave_before(case_study, criteria):
    "The course's call (its criteria, its best rule, the case study's dates) and the tour's quality check, as before issue 14"
    from mlops_kit.data import quality_report
    def month_to_month_or_new(frame):
        "Month-to-month contract, or with Lumen under 2 years"
        return (frame.contract_type == "month-to-month") | (frame.tenure_months < 24)
    value = assess_added_value(case_study, criteria=criteria, rule=month_to_month_or_new,
                               train_end=case_study.train_end, test_end=case_study.test_end)
    table = value.table.set_index("approach")
    assert table.churn_cost_per_1000.round(2).tolist() == [75_000, 42_500, 34_966.67, 29_083.33]
    assert table.flagged.round(6).tolist() == [0, 1, 0.732, 0.581333] and table.meets_criteria.tolist() == [False, False, False, True]
    assert (value.threshold, round(value.saving, 2)) == (0.085, 5_883.33)
    assert [round(end, 2) for end in value.saving_interval] == [3_649.58, 8_183.33]
    assert {name: round(number, 6) for name, number in value.measured.items()} == {
        "churn_cost_per_1000": 29_083.333333, "recall": 0.908889, "precision": 0.234518}
    quality = quality_report(case_study.clean_sample().between(end=case_study.train_end))
    assert quality.ok and quality.summary().status.tolist() == ["skipped: no reference given", "ok", "ok"]


def test_a_rule_that_fails_or_a_model_of_the_wrong_task_is_named(wine, diabetes):
    from sklearn.linear_model import LinearRegression, LogisticRegression
    with pytest.raises(MlopsKitError, match="The rule \\(Divides by zero\\) failed on the test rows: ZeroDivisionError") as raised:
        def broken(frame):
            "Divides by zero"
            return 1 / 0
        assess_added_value(diabetes, rule=broken, model=NeverPredicts())
    assert isinstance(raised.value.__cause__, ZeroDivisionError)  # the rule's own traceback is kept
    with pytest.raises(MlopsKitError, match="The model LinearRegression predicts .*, not the classes '0', '1', '2' of 'cultivar': give a classifier"):
        assess_added_value(wine, model=LinearRegression(), resamples=10)
    with pytest.raises(MlopsKitError, match="could not be fitted .* to predict a regression target: .* It must be a regressor"):
        assess_added_value(Dataset(diabetes.frame.assign(progression=diabetes.y + 0.5), "progression", diabetes.features),
                           model=LogisticRegression(), resamples=10)


def test_with_the_classes_1_and_2_a_rule_answering_1_predicts_the_class_1(cancer):
    labelled = Dataset(cancer.frame.assign(malignant=cancer.y + 1), "malignant", cancer.features, positive_label=2)
    by_label = assess_added_value(labelled, rule=lambda frame: np.ones(len(frame), int), resamples=20).table.set_index("approach")
    by_flag = assess_added_value(labelled, rule=lambda frame: np.zeros(len(frame), int), resamples=20).table.set_index("approach")
    assert by_label.flagged["rule"] == 0 and by_flag.flagged["rule"] == 0  # 1 is a class; 0 is no class, so a flag


def test_a_saving_of_zero_reads_as_zero(cancer):
    value = assess_added_value(in_words(cancer), criteria=Criteria("recall >= 0.8"), resamples=20)
    assert value.best_baseline == "flag everybody" and value.saving == 0 and "a gain of 0 (95% interval 0 to 0)" in value.statement
    assert "-0" not in value.statement and not value.ml_adds_value
