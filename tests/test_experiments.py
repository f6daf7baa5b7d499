"""Experiment grids: the conditional search space, constraints, pruning, reproducibility, several workers on a journal
file and on PostgreSQL, a killed worker whose trial is retried, and bad input refused without damaging a stored study."""
import hashlib, multiprocessing, os, signal, subprocess, sys, time, warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from mlops_kit.development import (Algorithm, CaseStudySample, check_winner, compare_baselines, parameter_importances, plot_history,
                                   plot_importances, plot_scores, ExperimentGrid, FloatRange, IntRange, StorageConnectionError,
                                   cv_folds, default_algorithms, default_data_variants, fail_stale_trials, fit_best, make_storage,
                                   run_worker)
from mlops_kit.data import Dataset
from mlops_kit.errors import MlopsKitError
from mlops_kit.development import DataVariant
from mlops_kit.lifecycle import Criteria, Project, cost_metric, metric_registry

COMMAND = [sys.executable, "-c", "import sys; from mlops_kit.cli import main; sys.exit(main())"]
SAMPLE = CaseStudySample(n=1200, seed=42, sample_seed=0)
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

metric_registry.register(cost_metric("cost_per_1000", false_positive_cost=50, false_negative_cost=500))


@pytest.fixture(scope="module")
def sample():
    return SAMPLE.load()


@pytest.fixture(scope="module")
def variants(sample):
    return default_data_variants(sample)[:2]


def tracked_criteria(*others):
    "roc_auc to optimise; recall and precision tracked (met by a model that flags anybody) unless `others` replace them"
    return Criteria("roc_auc >= 0.7", list(others) or ["recall > 0", "precision > 0"])


def fast_algorithms():
    "Small, quick versions of the defaults"
    return [Algorithm("logistic_regression", "sklearn.linear_model.LogisticRegression",
                      {"C": FloatRange(1e-3, 10.0, log=True)}, {"max_iter": 500}, simple=True),
            Algorithm("decision_tree", "sklearn.tree.DecisionTreeClassifier", {"max_depth": IntRange(1, 10)}),
            Algorithm("random_forest", "sklearn.ensemble.RandomForestClassifier",
                      {"n_estimators": IntRange(10, 40), "max_depth": IntRange(2, 10)})]


@pytest.fixture(scope="module")
def sequential(variants):
    return ExperimentGrid(variants, fast_algorithms(), tracked_criteria(), cv=3, seed=0).run(SAMPLE, n_trials=16, show_progress=False)


def test_a_trial_never_holds_parameters_of_an_algorithm_it_did_not_pick(sequential):
    trials = sequential.study_.trials
    assert {trial.params["algorithm"] for trial in trials} == {"logistic_regression", "decision_tree", "random_forest"}
    for trial in trials:
        algorithm = trial.params["algorithm"]
        own = {key for key in trial.params if key not in ("data_variant", "algorithm")}
        assert all(key.startswith(algorithm + "__") for key in own), trial.params
        expected = {spec.name: spec for spec in fast_algorithms()}[algorithm].space
        assert own == {f"{algorithm}__{key}" for key in expected}


def test_pruning_saves_work_and_pruned_trials_keep_their_constraints(sequential):
    board = sequential.leaderboard()
    assert len(board) == 16 and (board.state == "pruned").any()
    assert board.folds_fitted.sum() < 16 * 3
    for trial in sequential.study_.get_trials(states=(optuna.trial.TrialState.PRUNED,)):
        assert set(trial.constraints) == {"recall", "precision"}
        assert trial.user_attrs["folds_fitted"] < 3 and "roc_auc_mean" in trial.user_attrs


def test_the_best_is_compared_with_baselines_and_checked_on_repeated_folds(sequential, sample):
    baselines = compare_baselines(sequential, rule=sample.rule)
    assert baselines.approach.tolist() == ["dummy", "rule", f"best trial #{sequential.best_trial_.number}"]
    assert baselines.roc_auc_mean.iloc[-1] > baselines.roc_auc_mean.iloc[0]
    check = check_winner(sequential, top=2, repeats=1)
    assert set(check.comparisons.role) <= {"runner-up", "simple model"} and len(check.comparisons) >= 1
    assert check.comparisons.low.le(check.comparisons.mean_difference).all() and "interval" in check.statement
    importances = parameter_importances(sequential)
    assert "algorithm" in set(importances.parameter) or importances.empty
    assert [type(plot(sequential)).__name__ for plot in (plot_history, plot_importances, plot_scores)] == ["Figure"] * 3


def test_a_frame_without_time_gets_stratified_folds(sample, variants):
    grid = ExperimentGrid(variants, fast_algorithms()[:1], tracked_criteria(), cv=3, seed=0)
    grid.run(sample.frame[sample.features], sample.y.to_numpy(), n_trials=2, show_progress=False)
    assert grid.summary()["folds"] == "stratified" and len(grid.folds_) == 3
    positives = [sample.y.to_numpy()[test].mean() for _, test in grid.folds_]
    assert max(positives) - min(positives) < 0.02


def test_a_constraint_the_unconstrained_best_violates_changes_the_chosen_model(sequential, variants):
    unconstrained = sequential.best_unconstrained_trial_
    complete = sequential.study_.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    metric = next(name for name in ("precision", "recall")
                  if any(trial.user_attrs[f"{name}_mean"] > unconstrained.user_attrs[f"{name}_mean"] for trial in complete))
    better = max(trial.user_attrs[f"{metric}_mean"] for trial in complete)
    threshold = round((unconstrained.user_attrs[f"{metric}_mean"] + better) / 2, 6)
    constrained = ExperimentGrid(variants, fast_algorithms(), tracked_criteria(f"{metric} >= {threshold}"), cv=3, seed=0)
    constrained.run(SAMPLE, n_trials=16, show_progress=False)
    chosen = constrained.best_trial_
    assert chosen is not None and chosen.user_attrs[f"{metric}_mean"] >= threshold
    assert chosen.params != unconstrained.params
    same_as_unconstrained = [trial for trial in constrained.study_.trials if trial.params == unconstrained.params]
    assert all(trial.constraints[metric] > 0 for trial in same_as_unconstrained if trial.state.name == "COMPLETE")
    assert constrained.leaderboard().iloc[0].number == chosen.number
    assert fit_best(constrained).trial == chosen.number


def test_a_seeded_sequential_run_reproduces(variants):
    def run():
        grid = ExperimentGrid(variants, fast_algorithms(), tracked_criteria(), cv=3, seed=3).run(SAMPLE, n_trials=8, show_progress=False)
        return [(trial.params, trial.value, trial.state.name) for trial in grid.study_.trials]
    assert run() == run()


def test_several_processes_share_a_journal_file_without_losing_trials(tmp_path, variants):
    url = f"journal:{tmp_path}/churn.journal"
    ExperimentGrid(variants, fast_algorithms(), tracked_criteria(), cv=3, storage=url, study_name="churn").create_study(SAMPLE)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=run_worker, args=(url, "churn", 10)) for _ in range(2)]
    for worker in workers: worker.start()
    for worker in workers: worker.join(timeout=300)
    assert [worker.exitcode for worker in workers] == [0, 0]
    trials = optuna.load_study(study_name="churn", storage=make_storage(url)).trials
    assert len([trial for trial in trials if trial.state in FINISHED]) >= 10
    assert all(trial.state in FINISHED for trial in trials), [trial.state for trial in trials]
    assert sorted(trial.number for trial in trials) == list(range(len(trials)))
    assert all(trial.user_attrs["folds_fitted"] >= 1 for trial in trials)


def start_worker(url, trials, *options):
    return subprocess.Popen([*COMMAND, "experiment", "worker", "--storage", url, "--study", "churn", "--trials", str(trials), *options],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.service("postgresql")
def test_several_workers_share_a_study_on_postgresql(postgres_url, variants, tmp_path):
    grid = ExperimentGrid(variants, fast_algorithms(), tracked_criteria(), cv=3, storage=postgres_url, study_name="churn")
    grid.create_study(SAMPLE)
    workers = [start_worker(postgres_url, 10) for _ in range(2)]
    for worker in workers:
        _, errors = worker.communicate(timeout=300)
        assert worker.returncode == 0, errors[-3000:]
    grid.run(SAMPLE, n_trials=0, show_progress=False)
    board = grid.leaderboard()
    assert len(board[board.state.isin(["complete", "pruned"])]) >= 10 and set(board.state) <= {"complete", "pruned"}
    record = grid.record(Project(tmp_path / "churn.journal.json", "churn"))
    assert record.data["storage"].startswith("postgresql://") and record.data["best"] is not None
    password = postgres_url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
    if password: assert f":{password}@" not in str(record.data) and ":***@" in record.data["storage"]


def slow_algorithm():
    "A random forest big enough that a trial takes a second or two"
    return [Algorithm("random_forest", "sklearn.ensemble.RandomForestClassifier", {"max_depth": IntRange(3, 8)}, {"n_estimators": 300})]


@pytest.mark.service("postgresql")
def test_a_killed_worker_trial_is_failed_by_heartbeat_and_retried(postgres_url, variants):
    ExperimentGrid(variants[:1], slow_algorithm(), tracked_criteria(), cv=3, storage=postgres_url, study_name="churn",
                   pruner="none").create_study(SAMPLE)
    storage = make_storage(postgres_url, heartbeat_interval=1, grace_period=3)
    study = optuna.load_study(study_name="churn", storage=storage)
    worker = start_worker(postgres_url, 6, "--heartbeat-interval", "1", "--grace-period", "3")
    running = []
    for _ in range(2400):  # wait (up to a few minutes) for a finished trial, and a running one well inside its fits:
        trials = study.get_trials(deepcopy=False)  # every parameter suggested (on a loaded machine that can take a while)
        running = [trial for trial in trials if trial.state == optuna.trial.TrialState.RUNNING
                   and "random_forest__max_depth" in trial.params
                   and (datetime.now() - trial.datetime_start).total_seconds() <= 1.0]
        if running and any(trial.state in FINISHED for trial in trials): break
        assert worker.poll() is None, worker.communicate()[1][-3000:]
        time.sleep(0.1)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    before = {trial.number: (trial.state, trial.value) for trial in study.get_trials() if trial.state in FINISHED}
    killed = [trial.number for trial in study.get_trials() if trial.state == optuna.trial.TrialState.RUNNING]
    assert before and len(killed) == 1
    time.sleep(4)  # let the grace period pass without heartbeat
    resumed = start_worker(postgres_url, 6, "--heartbeat-interval", "1", "--grace-period", "3")
    _, errors = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, errors[-3000:]
    trials = study.get_trials()
    assert trials[killed[0]].state == optuna.trial.TrialState.FAIL
    retried = [trial for trial in trials if trial.system_attrs.get("retry_history") == killed]
    assert len(retried) == 1 and retried[0].state in FINISHED and retried[0].params == trials[killed[0]].params
    assert all((trials[number].state, trials[number].value) == saved for number, saved in before.items())
    assert len([trial for trial in trials if trial.state in FINISHED]) >= 6
    assert not [trial for trial in trials if trial.state == optuna.trial.TrialState.RUNNING]


def test_a_stored_study_is_never_damaged_by_a_bad_call(tmp_path, variants):
    url = f"journal:{tmp_path}/churn.journal"
    ExperimentGrid(variants, fast_algorithms(), tracked_criteria(), cv=3, storage=url, study_name="churn").run(SAMPLE, n_trials=3, show_progress=False)
    saved = (tmp_path / "churn.journal").read_bytes()
    conflicting = ExperimentGrid(variants, fast_algorithms()[:2], tracked_criteria(), cv=3, storage=url, study_name="churn")
    with pytest.raises(ValueError, match=r"was created by another grid definition \(it differs in: algorithms\)"):
        conflicting.run(SAMPLE, n_trials=2)
    with pytest.raises(ValueError, match="differs in: data"):
        ExperimentGrid(variants, fast_algorithms(), tracked_criteria(), cv=3, storage=url, study_name="churn").run(
            CaseStudySample(n=1300), n_trials=2)
    with pytest.raises(ValueError, match="Unknown metric"):
        ExperimentGrid(variants, fast_algorithms(), ["roc_auc >= 0.7", "recal >= 0"], cv=3, storage=url, study_name="churn").run(SAMPLE, n_trials=2)
    assert (tmp_path / "churn.journal").read_bytes() == saved
    again = ExperimentGrid.from_study(url, "churn").run(None, n_trials=1, show_progress=False)
    assert len(again.study_.trials) == 4


def test_cleanup_fails_and_requeues_a_dead_workers_trial_on_a_journal(tmp_path, variants):
    url = f"journal:{tmp_path}/churn.journal"
    ExperimentGrid(variants, fast_algorithms(), tracked_criteria(), cv=3, storage=url, study_name="churn").run(SAMPLE, n_trials=2, show_progress=False)
    study = optuna.load_study(study_name="churn", storage=make_storage(url))
    study.enqueue_trial({"data_variant": "scaled", "algorithm": "decision_tree", "decision_tree__max_depth": 3})
    study.ask()  # a trial left RUNNING by a worker that was killed
    assert fail_stale_trials(url, "churn", older_than=3600) == []
    result = subprocess.run([*COMMAND, "experiment", "cleanup", "--storage", url, "--study", "churn", "--older-than", "0"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "failed 1 stale trial(s): 2; queued again" in result.stdout
    finished = run_worker(url, "churn", 3)
    trials = finished.study_.trials
    assert trials[2].state == optuna.trial.TrialState.FAIL and trials[3].system_attrs["retry_history"] == [2]
    assert trials[3].state in FINISHED and trials[3].params["decision_tree__max_depth"] == 3


def test_the_winner_check_scores_each_distinct_time_fold_once(sequential):
    "Forward-chaining folds recur across repeats; a fold counted twice would narrow the t-test's interval falsely"
    check = check_winner(sequential, top=2, repeats=3)
    data = sequential.data_
    windows = {}
    for repeat in (1, 2, 3):
        for fold, (train, test) in enumerate(cv_folds(sequential.cv, data.y, data.times, sequential.seed, repeat=repeat)):
            windows[(repeat, fold)] = (len(train), test.tobytes())
    distinct = len(set(windows.values()))
    assert distinct < len(windows)  # the case study's months do repeat folds across repeats
    for _, scored in check.scores.groupby("trial"):
        used = [windows[(row.repeat, row.fold)] for row in scored.itertuples()]
        assert len(used) == len(set(used)) == distinct


# ---- bad input: refused before anything is written, files left byte for byte as they were ------------------------

def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def tiny_grid(cv=3, **options):
    "A grid on two numeric columns, one quick algorithm"
    return ExperimentGrid([DataVariant("plain", ["a", "b"])], fast_algorithms()[:1], "recall >= 0.5", cv=cv, **options)


def sample_grid(**options):
    "A grid a worker can rebuild: it runs on a CaseStudySample"
    return ExperimentGrid([DataVariant("plain", ["tenure_months", "monthly_charges"])], fast_algorithms()[:1], "recall >= 0.5", cv=2, **options)


def tiny_data(positives=2, rows=12):
    frame = pd.DataFrame({"a": np.arange(float(rows)), "b": np.arange(float(rows)) % 3})
    return frame, np.array([1] * positives + [0] * (rows - positives))


@pytest.mark.parametrize("name", ["studies.log", "studies.journal"])
def test_a_new_or_empty_file_or_an_optuna_journal_is_a_journal(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    tiny_grid(storage=str(path), study_name="first").run(*tiny_data(positives=6), n_trials=1, show_progress=False)
    grid = tiny_grid(storage=str(path), study_name="first").run(*tiny_data(positives=6), n_trials=1, show_progress=False)
    assert len(grid.study_.trials) == 2  # the journal written by the first run is read back and added to


def test_a_read_only_journal_is_refused_unchanged(tmp_path):
    "Mode bits decide, so the test holds for root too (for whom os.access always says writable)"
    journal = tmp_path / "studies.journal"
    url = f"journal:{journal}"
    sample_grid(storage=url, study_name="churn").run(CaseStudySample(n=600), n_trials=1, show_progress=False)
    journal.chmod(0o444)
    before = sha256(journal)
    calls = [lambda: sample_grid(storage=url, study_name="churn").run(CaseStudySample(n=600), n_trials=1, show_progress=False),
             lambda: run_worker(url, "churn", 3), lambda: fail_stale_trials(url, "churn", older_than=0),
             lambda: ExperimentGrid.from_study(url, "churn")]
    for call in calls:
        with pytest.raises(StorageConnectionError, match=r"is read-only.*chmod u\+w"): call()
    assert sha256(journal) == before and sorted(tmp_path.iterdir()) == [journal]


def test_workers_and_cleanup_refuse_bad_numbers_and_missing_storages(tmp_path):
    journal = tmp_path / "studies.journal"
    url = f"journal:{journal}"
    sample_grid(storage=url, study_name="churn").create_study(CaseStudySample(n=600))
    before = sha256(journal)
    refused = [(lambda: run_worker(url, "churn", -1), "max_trials must be a whole number >= 1, got -1"),
               (lambda: run_worker(url, "churn", 3, heartbeat_interval=-5), "heartbeat_interval must be a whole number >= 1"),
               (lambda: run_worker(url, "churn", 3, grace_period=0), "grace_period must be a whole number >= 1"),
               (lambda: run_worker(url, "churn", 3, n_jobs_per_trial=0), "n_jobs_per_trial must be a whole number >= 1"),
               (lambda: run_worker(url, "", 3), "study_name must be the name of a study"),
               (lambda: fail_stale_trials(url, "churn", older_than=-1), "older_than must be a finite number of seconds >= 0"),
               (lambda: fail_stale_trials(url, "churn", older_than=float("nan")), "older_than must be a finite number"),
               (lambda: fail_stale_trials(url, "churn", older_than=0, retry="no"), "retry must be True or False"),
               (lambda: run_worker(f"journal:{tmp_path}/typo.journal", "churn", 3), "typo.journal does not exist, so study 'churn' cannot be in it"),
               (lambda: fail_stale_trials(f"sqlite:///{tmp_path}/typo.db", "churn", 60), "typo.db does not exist")]
    for call, message in refused:
        with pytest.raises(MlopsKitError, match=message): call()
    assert sha256(journal) == before and sorted(tmp_path.iterdir()) == [journal]
    assert fail_stale_trials(url, "churn", older_than=1e300) == []  # older than any calendar: nothing is that old


def test_a_hand_edited_grid_definition_is_refused_when_a_worker_rebuilds_it(tmp_path):
    url = f"journal:{tmp_path}/studies.journal"
    grid = sample_grid(storage=url, study_name="churn").create_study(CaseStudySample(n=600))
    definition = grid.study_.user_attrs["mlops_kit_grid"]
    for name, edit in [("no-space", lambda d: d["algorithms"][0].pop("space")),
                       ("bad-range", lambda d: d["algorithms"][0]["space"]["C"].update({"float": [5, "x"]})),
                       ("regressor", lambda d: d["algorithms"][0].update(estimator="sklearn.linear_model.LinearRegression")),
                       ("no-cv", lambda d: d.pop("cv")), ("seed", lambda d: d.update(seed=-1))]:
        edited = __import__("copy").deepcopy(definition)
        edit(edited)
        study = optuna.create_study(study_name=name, storage=make_storage(url))
        study.set_user_attr("mlops_kit_grid", edited)
        with pytest.raises(MlopsKitError): ExperimentGrid.from_study(url, name)
        with pytest.raises(MlopsKitError): run_worker(url, name, 2)


def test_a_candidate_scikit_learn_cannot_fit_is_named_without_a_traceback(capfd):
    algorithm = Algorithm("lasso_logistic", "sklearn.linear_model.LogisticRegression", {}, {"l1_ratio": 1.0, "solver": "lbfgs"})
    grid = ExperimentGrid([DataVariant("plain", ["a", "b"])], [algorithm], "recall >= 0.5", cv=2)
    with pytest.raises(MlopsKitError, match=r"Trial #0 \(lasso_logistic on plain, parameters \{\}\) could not be fitted on fold 1"):
        grid.run(*tiny_data(positives=6), n_trials=1, show_progress=False)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["worker", "--trials", "-1"], "argument --trials: must be a whole number >= 1, got '-1'"),
    (["worker", "--trials", "3", "--heartbeat-interval", "-1"], "argument --heartbeat-interval: must be a whole number >= 1"),
    (["worker", "--trials", "3", "--n-jobs", "0"], "argument --n-jobs: must be a whole number >= 1, got '0'"),
    (["worker", "--trials", "3", "--grace-period", "x"], "argument --grace-period: must be a whole number >= 1, got 'x'"),
    (["cleanup", "--older-than", "-1"], "argument --older-than: must be a number of minutes >= 0, got '-1'"),
    (["cleanup", "--older-than", "inf"], "argument --older-than: must be a number of minutes >= 0, got 'inf'"),
    (["worker", "--trials", "3"], "It was left unchanged"), (["cleanup", "--older-than", "5"], "It was left unchanged")])
def test_the_experiment_command_refuses_bad_options_with_exit_code_2_and_no_traceback(tmp_path, arguments, message):
    app_log = tmp_path / "app.log"
    app_log.write_text("12:00 service started\n")
    before = sha256(app_log)
    action, *options = arguments
    finished = subprocess.run([*COMMAND, "experiment", action, "--storage", str(app_log), "--study", "churn", *options],
                              capture_output=True, text=True, timeout=120)
    output = finished.stdout + finished.stderr
    assert finished.returncode == 2 and message in output and "Traceback" not in output, output
    assert sha256(app_log) == before and sorted(tmp_path.iterdir()) == [app_log]


# ---- every task: binary with named classes, multiclass, regression; the user's own data and estimators ---------------

from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.decomposition import PCA
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import (f1_score, log_loss, precision_score, r2_score, recall_score, roc_auc_score, root_mean_squared_error)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mlops_kit.data import load_real_dataset


class MedianRegressor(RegressorMixin, BaseEstimator):
    "An estimator of 'another package' (this test module), with the scikit-learn API: the median of the training target, shrunk"
    def __init__(self, shrink=0.0): self.shrink = shrink
    def fit(self, X, y): self.median_ = float(np.median(y)) * (1 - self.shrink); return self
    def predict(self, X): return np.full(len(X), self.median_)


def quick_variants(dataset):
    "The default variants, screened for leakage quietly on every task"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return default_data_variants(dataset)


def candidates(grid, variants, algorithms):
    "Each complete trial with the scikit-learn pipeline it scored, built from the public pieces"
    by_name = {item.name: item for item in [*variants, *algorithms]}
    for trial in grid.study_.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        params = {key.partition("__")[2]: value for key, value in trial.params.items() if "__" in key}
        yield trial, Pipeline([("prepare", by_name[trial.params["data_variant"]].build()),
                               ("model", by_name[trial.params["algorithm"]].build(params, grid.seed))])


def fold_means(pipeline, frame, y, folds, measure):
    "The mean over `folds` of measure(y_true, fitted pipeline, test rows), on one thread as the grid fits (k-nearest neighbours break ties by thread)"
    from threadpoolctl import threadpool_limits
    values = []
    for train, test in folds:
        with __import__("warnings").catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", UserWarning)
            fitted = pipeline.fit(frame.iloc[train], y[train])
            values.append(measure(y[test], fitted, frame.iloc[test]))
    return float(np.mean(values))


@pytest.fixture(scope="module")
def named_cancer():
    cancer = load_real_dataset("breast_cancer")
    frame = cancer.frame.assign(malignant=np.where(cancer.y == 1, "malignant", "benign"))
    return Dataset(frame, target="malignant", features=cancer.features, positive_label="malignant")


def test_a_multiclass_grid_end_to_end_gives_scikit_learns_figures_on_its_folds(wine):
    variants, algorithms = quick_variants(wine), default_algorithms(wine)[:2]
    criteria = Criteria("f1_macro >= 0.8", ["log_loss <= 2", "roc_auc_ovr >= 0.8"])
    grid = ExperimentGrid(variants, algorithms, criteria, cv=3, seed=1, pruner="none").run(wine, n_trials=5, show_progress=False)
    frame, y, classes = grid.data_.frame, grid.data_.y, wine.classes
    assert grid.summary()["task"] == "multiclass" and grid.summary()["folds"] == "stratified" and grid.threshold_ is None
    assert all(set(y[test]) == set(classes) for _, test in grid.folds_)
    for trial, pipeline in candidates(grid, variants, algorithms):
        f1 = fold_means(pipeline, frame, y, grid.folds_, lambda truth, model, rows: f1_score(truth, model.predict(rows), average="macro"))
        loss = fold_means(pipeline, frame, y, grid.folds_, lambda truth, model, rows: log_loss(truth, model.predict_proba(rows), labels=classes))
        auc = fold_means(pipeline, frame, y, grid.folds_, lambda truth, model, rows: roc_auc_score(truth, model.predict_proba(rows), multi_class="ovr"))
        assert trial.value == pytest.approx(f1, abs=1e-12) and trial.user_attrs["f1_macro_mean"] == pytest.approx(f1, abs=1e-12)
        assert trial.user_attrs["log_loss_mean"] == pytest.approx(loss, abs=1e-12)
        assert trial.user_attrs["roc_auc_ovr_mean"] == pytest.approx(auc, abs=1e-12)
    baselines = compare_baselines(grid)
    dummy = fold_means(DummyClassifier(strategy="prior"), frame, y, grid.folds_,
                       lambda truth, model, rows: f1_score(truth, model.predict(rows), average="macro"))
    assert baselines.approach.tolist()[0] == "dummy" and baselines.f1_macro_mean.iloc[0] == pytest.approx(dummy, abs=1e-12)
    assert "rule" not in baselines.approach.tolist()
    check = check_winner(grid, top=2, repeats=1)
    assert check.metric == "f1_macro" and len(check.comparisons) >= 1
    assert [type(plot(grid)).__name__ for plot in (plot_history, plot_importances, plot_scores)] == ["Figure"] * 3
    best = fit_best(grid)
    assert best.task == "multiclass" and best.classes == [0, 1, 2] and best.threshold is None
    assert set(best.predict(wine.frame)) <= set(classes) and best.to_dict()["classes"] == [0, 1, 2]
    with pytest.raises(MlopsKitError, match="flag is for a binary task.*use predict"): best.flag(wine.frame)


def test_a_regression_grid_end_to_end_gives_scikit_learns_figures_on_its_folds(diabetes):
    variants, algorithms = quick_variants(diabetes), default_algorithms(diabetes)
    assert [algorithm.name for algorithm in algorithms] == ["ridge", "k_nearest_neighbours", "random_forest", "hist_gradient_boosting"]
    assert algorithms[0].simple and all(algorithm.check("regression") for algorithm in algorithms)
    grid = ExperimentGrid(variants, [algorithms[0], algorithms[1]], Criteria("rmse <= 80", ["r2 >= 0.1"]), cv=4, seed=0, pruner="none")
    grid.run(diabetes, n_trials=5, show_progress=False)
    frame, y = grid.data_.frame, grid.data_.y
    assert grid.summary()["folds"] == "k-fold" and grid.criteria_.direction == "minimize" and grid.threshold_ is None
    assert sorted(np.concatenate([test for _, test in grid.folds_]).tolist()) == list(range(len(y)))
    for trial, pipeline in candidates(grid, variants, algorithms):
        rmse = fold_means(pipeline, frame, y, grid.folds_, lambda truth, model, rows: root_mean_squared_error(truth, model.predict(rows)))
        r2 = fold_means(pipeline, frame, y, grid.folds_, lambda truth, model, rows: r2_score(truth, model.predict(rows)))
        assert trial.value == pytest.approx(rmse, abs=1e-9) and trial.user_attrs["r2_mean"] == pytest.approx(r2, abs=1e-12)
    baselines = compare_baselines(grid, rule=lambda rows: rows.bmi * 900 + 150)
    dummy = fold_means(DummyRegressor(), frame, y, grid.folds_, lambda truth, model, rows: root_mean_squared_error(truth, model.predict(rows)))
    ruled = np.mean([root_mean_squared_error(y[test], frame.bmi.iloc[test] * 900 + 150) for _, test in grid.folds_])
    assert baselines.approach.tolist()[:2] == ["dummy", "rule"] and baselines.description.iloc[0].startswith("DummyRegressor")
    assert baselines.rmse_mean.iloc[0] == pytest.approx(dummy, abs=1e-9) and baselines.rmse_mean.iloc[1] == pytest.approx(ruled, abs=1e-9)
    assert history_frame_is_monotonic(grid)
    check = check_winner(grid, top=2, repeats=2)
    assert check.metric == "rmse" and check.beats_simple_model in (None, True, False)
    best = fit_best(grid)
    predictions = best.predict(diabetes.frame)
    assert best.task == "regression" and best.classes is None and best.cv["kind"] == "k-fold" and predictions.dtype.kind == "f"
    with pytest.raises(MlopsKitError, match="this model is regression: use predict"): best.flag(diabetes.frame)


def history_frame_is_monotonic(grid):
    from mlops_kit.development import history_frame
    return history_frame(grid).best_so_far.dropna().is_monotonic_decreasing


def test_a_binary_target_with_named_classes_keeps_its_labels_and_positive_class(named_cancer):
    variants, algorithms = quick_variants(named_cancer)[:1], default_algorithms(named_cancer)[:1]
    criteria = Criteria("roc_auc >= 0.9", ["recall >= 0.8", "precision >= 0.8"])
    grid = ExperimentGrid(variants, algorithms, criteria, cv=3, seed=0, pruner="none").run(named_cancer, n_trials=3, show_progress=False)
    frame, y = grid.data_.frame, grid.data_.y
    assert set(y) == {"malignant", "benign"} and grid.threshold_ == 0.5
    def positive(model, rows): return model.predict_proba(rows)[:, list(model.classes_).index("malignant")]
    for trial, pipeline in candidates(grid, variants, algorithms):
        recall = fold_means(pipeline, frame, y, grid.folds_,
                            lambda truth, model, rows: recall_score(truth, np.where(positive(model, rows) >= 0.5, "malignant", "benign"), pos_label="malignant"))
        precision = fold_means(pipeline, frame, y, grid.folds_,
                               lambda truth, model, rows: precision_score(truth, np.where(positive(model, rows) >= 0.5, "malignant", "benign"), pos_label="malignant"))
        auc = fold_means(pipeline, frame, y, grid.folds_, lambda truth, model, rows: roc_auc_score(truth == "malignant", positive(model, rows)))
        assert (trial.value, trial.user_attrs["recall_mean"], trial.user_attrs["precision_mean"]) == pytest.approx((auc, recall, precision), abs=1e-12)
    baselines = compare_baselines(grid, rule=lambda rows: rows["mean radius"] > 15)
    flags = [(frame["mean radius"].iloc[test] > 15).to_numpy() for _, test in grid.folds_]
    ruled = np.mean([recall_score(y[test] == "malignant", flagged) for (_, test), flagged in zip(grid.folds_, flags)])
    assert baselines.recall_mean.iloc[1] == pytest.approx(ruled, abs=1e-12)
    best = fit_best(grid)
    assert set(best.predict(named_cancer.frame)) == {"malignant", "benign"} and best.positive_label == "malignant"
    assert (best.flag(named_cancer.frame) == (best.predict(named_cancer.frame) == "malignant")).all()
    benign_first = Dataset(named_cancer.frame, target="malignant", features=named_cancer.features, positive_label="benign")
    other = ExperimentGrid(variants, algorithms, criteria, cv=3, seed=0, pruner="none").run(benign_first, n_trials=1, show_progress=False)
    assert other.study_.trials[0].user_attrs["recall_mean"] != grid.study_.trials[0].user_attrs["recall_mean"]  # the other class is found


def months_of_kinds(months=8, rows=60, seed=0):
    "A multiclass target with text labels, a date column, a text feature and missing values, built here"
    rng = np.random.default_rng(seed)
    n = months * rows
    frame = pd.DataFrame({"month": pd.date_range("2024-01-01", periods=months, freq="MS").repeat(rows), "size": rng.normal(size=n),
                          "weight": rng.normal(size=n), "colour": rng.choice(["red", "green", "blue"], size=n)})
    measured = frame["size"] + rng.normal(scale=0.3, size=n)  # the kind follows size, not perfectly: no leak for the screen to flag
    frame["kind"] = np.select([measured > 0.6, measured < -0.6], ["large", "small"], "medium")
    frame.loc[rng.random(n) < 0.1, "weight"] = np.nan
    frame.loc[rng.random(n) < 0.05, "colour"] = None
    return frame


def test_a_multiclass_dataset_with_dates_and_missing_values_gets_forward_chaining_folds_and_fits_later_months():
    frame = months_of_kinds()
    dataset = Dataset(frame, target="kind", features=["size", "weight", "colour"], time_column="month")
    early = dataset.between(end="2024-06-01")
    variants = quick_variants(early)
    grid = ExperimentGrid(variants, default_algorithms(early)[:2], "balanced_accuracy >= 0.6", cv=3, seed=0).run(early, n_trials=3, show_progress=False)
    months = grid.data_.times
    assert grid.summary()["folds"] == "time" and all(months[train].max() < months[test].min() for train, test in grid.folds_)
    best = fit_best(grid)
    later = dataset.between("2024-06-01").frame
    assert set(best.predict(later)) <= {"large", "medium", "small"} and best.cv["kind"] == "time"
    assert (best.predict(later) == later.kind).mean() > 0.6
    no_small_in_march = frame[~((frame.month == "2024-03-01") & (frame.kind == "small"))]
    gap = Dataset(no_small_in_march, target="kind", features=["size", "weight", "colour"], time_column="month").between(end="2024-06-01")
    with pytest.raises(MlopsKitError, match=r"fold 1 tests on 2024-03-01, 45 rows: 19 of class 'large', 26 of class 'medium', without every class"):
        ExperimentGrid(variants, default_algorithms(early)[:1], "balanced_accuracy >= 0.6", cv=3).run(gap, n_trials=1)


def worker_command(url, study, data, trials, env=None):
    return subprocess.run([*COMMAND, "experiment", "worker", "--storage", url, "--study", study, "--data", str(data), "--trials", str(trials)],
                          capture_output=True, text=True, timeout=300, env=env)


def test_a_worker_rebuilds_a_study_made_from_the_users_csv_and_refuses_other_rows(tmp_path):
    frame = months_of_kinds()
    dataset = Dataset(frame, target="kind", features=["size", "weight", "colour"], time_column="month")
    frame.to_csv(tmp_path / "kinds.csv", index=False)
    url, journal = f"journal:{tmp_path}/kinds.journal", tmp_path / "kinds.journal"
    grid = ExperimentGrid(quick_variants(dataset), default_algorithms(dataset)[:2], "f1_macro >= 0.5", cv=3, storage=url, study_name="kinds")
    grid.run(dataset, n_trials=2, show_progress=False)
    joined = worker_command(url, "kinds", tmp_path / "kinds.csv", 4)
    assert joined.returncode == 0 and "study 'kinds': 4 trials" in joined.stdout, joined.stderr[-2000:]
    trials = optuna.load_study(study_name="kinds", storage=make_storage(url)).trials
    assert len(trials) == 4 and all(trial.state in FINISHED for trial in trials)
    frame.iloc[1:].to_csv(tmp_path / "fewer.csv", index=False)
    frame.assign(size=frame["size"].round(3)).to_csv(tmp_path / "rounded.csv", index=False)
    frame.drop(columns="colour").to_csv(tmp_path / "narrower.csv", index=False)
    frame.assign(size="x").to_csv(tmp_path / "text.csv", index=False)
    (tmp_path / "folder.csv").mkdir()
    before = sha256(journal)
    for data, message in [("fewer.csv", "is not the data study 'kinds' was made from (479 rows given, 480 in the study"),
                          ("rounded.csv", "is not the data study 'kinds' was made from (480 rows given, 480 in the study"),
                          ("narrower.csv", "the data lacks the column(s) 'colour'"), ("text.csv", "cannot be read with the column types"),
                          ("folder.csv", "is a folder"), ("kinds.xlsx", "give a .csv or .parquet file"), ("missing.csv", "no such file")]:
        refused = worker_command(url, "kinds", tmp_path / data, 6)
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr, (data, refused.stderr[-2000:])
    assert sha256(journal) == before and len(optuna.load_study(study_name="kinds", storage=make_storage(url)).trials) == 4
    with pytest.raises(MlopsKitError, match="give the worker the same data, --data FILE.csv"): run_worker(url, "kinds", 6)
    with pytest.raises(MlopsKitError, match="data must be the path of a .csv or .parquet file"): run_worker(url, "kinds", 6, data=3)
    assert sha256(journal) == before
    assert len(run_worker(url, "kinds", 5, data=dataset).study_.trials) == 5  # the Dataset itself, or its frame, does as well as a file


def test_a_parquet_file_needs_pyarrow_or_is_read_back(tmp_path):
    wine = load_real_dataset("wine")
    url = f"journal:{tmp_path}/wine.journal"
    ExperimentGrid([DataVariant("plain", wine.features)], default_algorithms(wine)[:1], "accuracy >= 0.5", cv=2, storage=url,
                   study_name="wine").create_study(wine)
    try: import pyarrow  # noqa: F401
    except ImportError:
        (tmp_path / "wine.parquet").write_bytes(b"PAR1")
        with pytest.raises(MlopsKitError, match="reading Parquet needs the pyarrow package, which is not installed"):
            run_worker(url, "wine", 1, data=tmp_path / "wine.parquet")
        return
    wine.frame.to_parquet(tmp_path / "wine.parquet")
    assert len(run_worker(url, "wine", 1, data=tmp_path / "wine.parquet").study_.trials) == 1


def test_an_estimator_of_another_package_a_pipeline_and_a_step_of_your_own_are_rebuilt_by_a_worker(tmp_path, diabetes):
    diabetes.frame.to_csv(tmp_path / "diabetes.csv", index=False)
    own = [Algorithm("median", MedianRegressor, {"shrink": FloatRange(0.0, 0.5)}),
           Algorithm("reduced_ridge", Pipeline([("reduce", PCA(n_components=3)), ("model", Ridge())]),
                     {"model__alpha": FloatRange(0.01, 10.0, log=True), "reduce__n_components": IntRange(2, 4)}, simple=True)]  # <= the 5 of `projected`
    variants = [DataVariant("plain", diabetes.features), DataVariant("projected", diabetes.features, step=PCA(n_components=5))]
    assert own[0].estimator == "test_experiments.MedianRegressor" and Algorithm.from_dict(own[1].to_dict()) == own[1]
    assert DataVariant.from_dict(variants[1].to_dict()) == variants[1] and variants[1].step.n_components == 5
    url = f"journal:{tmp_path}/own.journal"
    grid = ExperimentGrid(variants, own, "rmse <= 100", cv=3, storage=url, study_name="own", pruner="none")
    grid.run(diabetes, n_trials=4, show_progress=False)
    assert {trial.params["algorithm"] for trial in grid.study_.trials} == {"median", "reduced_ridge"}
    for trial, pipeline in candidates(grid, variants, own):
        rmse = fold_means(pipeline, grid.data_.frame, grid.data_.y, grid.folds_,
                          lambda truth, model, rows: root_mean_squared_error(truth, model.predict(rows)))
        assert trial.value == pytest.approx(rmse, abs=1e-9)
    assert own[1].estimator.named_steps["model"].alpha == 1.0  # the instance given is cloned, never fitted or changed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    joined = worker_command(url, "own", tmp_path / "diabetes.csv", 7, env=env)
    assert joined.returncode == 0 and "study 'own': 7 trials" in joined.stdout, joined.stderr[-2000:]
    best = fit_best(ExperimentGrid.from_study(url, "own").run(diabetes, n_trials=0, show_progress=False))
    assert best.predict(diabetes.frame).shape == (len(diabetes.frame),)


def test_an_instance_holding_code_of_its_own_runs_here_and_is_refused_for_a_worker_with_its_name(tmp_path, diabetes):
    diabetes.frame.to_csv(tmp_path / "diabetes.csv", index=False)
    squared = Algorithm("squared_ridge", Pipeline([("square", FunctionTransformer(lambda values: values ** 2)), ("model", Ridge())]))
    url = f"journal:{tmp_path}/own.journal"
    ExperimentGrid([DataVariant("plain", diabetes.features)], [squared], "rmse <= 100", cv=3, storage=url, study_name="own").run(
        diabetes, n_trials=1, show_progress=False)
    before = sha256(tmp_path / "own.journal")
    refused = worker_command(url, "own", tmp_path / "diabetes.csv", 3)
    assert refused.returncode == 2 and "algorithm 'squared_ridge' was given as an instance that cannot be saved" in refused.stderr
    assert "func=<function" in refused.stderr and "Traceback" not in refused.stderr
    stepped = DataVariant("odd", diabetes.features, step=FunctionTransformer(np.log1p))
    assert DataVariant.from_dict(stepped.to_dict()).step.func is np.log1p  # numpy's own functions are saved by name
    assert sha256(tmp_path / "own.journal") == before


def test_binary_only_settings_on_another_task_name_the_task_and_what_to_use(wine, diabetes):
    variants = quick_variants(wine)[:1]
    cost = cost_metric("wine_cost", 1, 5)
    registry = metric_registry.copy()
    registry.register(cost)
    with pytest.raises(MlopsKitError, match="'wine_cost <= 100' cannot judge a multiclass model.*Metrics for multiclass: .*f1_macro"):
        ExperimentGrid(variants, default_algorithms(wine), Criteria("f1_macro >= 0.5", ["wine_cost <= 100"], registry=registry)).run(wine, n_trials=1)
    with pytest.raises(MlopsKitError, match="threshold=0.2 is for a binary task.*multiclass task, so leave threshold=None"):
        ExperimentGrid(variants, default_algorithms(wine), "accuracy >= 0.5", threshold=0.2).run(wine, n_trials=1)
    with pytest.raises(MlopsKitError, match="'recall >= 0.5' cannot judge a regression model.*Metrics for regression: rmse"):
        ExperimentGrid(quick_variants(diabetes), default_algorithms(diabetes), "recall >= 0.5").run(diabetes, n_trials=1)
    with pytest.raises(MlopsKitError, match="LogisticRegression is not a regressor, so it cannot learn a regression task.*default_algorithms"):
        ExperimentGrid(quick_variants(diabetes), default_algorithms(), "rmse <= 50").run(diabetes, n_trials=1)
    with pytest.raises(MlopsKitError, match="Ridge is not a classifier with predict_proba, so it cannot learn a multiclass task"):
        ExperimentGrid(variants, default_algorithms(diabetes)[:1], "accuracy >= 0.5").run(wine, n_trials=1)
    grid = ExperimentGrid(variants, default_algorithms(wine)[:1], "accuracy >= 0.5", cv=2).run(wine, n_trials=1, show_progress=False)
    with pytest.raises(MlopsKitError, match=r"rule must give one of the classes \[0, 1, 2\] per row"):
        compare_baselines(grid, rule=lambda rows: rows.alcohol > 13)
    with pytest.raises(MlopsKitError, match="the grid ran on a multiclass task"):
        fit_best(grid, wine.frame, wine.frame.alcohol)  # the wines' alcohol: numbers, a regression target


def test_careless_data_for_any_task_is_refused_before_anything_is_written(tmp_path, wine):
    journal = tmp_path / "studies.journal"
    def grid(): return ExperimentGrid([DataVariant("plain", ["a", "b"])], fast_algorithms()[:1], "accuracy >= 0.5", cv=2, storage=f"journal:{journal}")
    frame = pd.DataFrame({"a": np.arange(12.0), "b": np.arange(12.0) % 3})
    labels = np.array(["red", "green", "blue"] * 4, dtype=object)
    for call, message in [
            (lambda: grid().run(frame, np.where(np.arange(12) == 4, None, labels), n_trials=1), "The target y has 1 missing value"),
            (lambda: grid().run(frame, labels, n_trials=1, task="regression"), "a regression target holds numbers"),
            (lambda: grid().run(frame, labels, n_trials=1, positive_label="red"), "positive_label is for a binary target"),
            (lambda: grid().run(frame, labels[:2].tolist() * 6, n_trials=1), "say which one is the positive class"),
            (lambda: grid().run(frame, labels, n_trials=1, task="ordinal"), "Unknown task 'ordinal'"),
            (lambda: grid().run(frame.iloc[:0], labels[:0], n_trials=1), "X and y have no rows"),
            (lambda: grid().run(wine, n_trials=1, task="binary"), "task='binary' is for a DataFrame X with y"),
            (lambda: grid().run(frame, labels, n_trials=1, show_progress=False) and None, "")]:
        if not message: continue
        with pytest.raises(MlopsKitError, match=message): call()
    assert not journal.exists()
    green = grid().run(frame, (labels == "green"), n_trials=1, show_progress=False)  # True / False: True is the positive class
    assert green.data_.positive_label is True and green.summary()["task"] == "binary"
    with pytest.raises(MlopsKitError, match="every feature of 'wine' is excluded"):
        default_data_variants(wine, exclude=wine.features)
    with pytest.raises(MlopsKitError, match="unknown task 'clustering'"): default_algorithms("clustering")
    with pytest.raises(MlopsKitError, match="takes a mlops_kit.data.Dataset"): default_algorithms(wine.frame)
    with pytest.raises(MlopsKitError, match="step must be a transformer instance"): DataVariant("odd", ["a"], step=PCA)
    with pytest.raises(MlopsKitError, match="an estimator class with the scikit-learn API"): Algorithm("odd", print)
    with pytest.raises(MlopsKitError, match="defined in a notebook, a script or a function"):
        Algorithm.from_dict(dict(name="odd", estimator="__main__.Unknown", space={}, fixed={}, simple=False)).check()


def test_default_data_variants_keep_only_the_variants_the_features_allow(wine):
    only_numbers = quick_variants(wine)
    assert [variant.name for variant in only_numbers] == ["scaled", "binned"]
    text = pd.DataFrame({"colour": ["red", "green"] * 24, "shape": ["round", "square", "flat", "long"] * 12, "kind": ["a", "a", "b"] * 16})
    only_text = default_data_variants(Dataset(text, target="kind", features=["colour", "shape"], positive_label="a"))
    assert [(variant.name, variant.categorical) for variant in only_text] == [("scaled", ("colour", "shape"))]


def test_every_default_regressor_packages_with_the_registrys_allow_list(diabetes, tmp_path):
    "What default_algorithms(dataset) gives for numbers must be packaged as safely as the classifiers (test_registry covers those)"
    from mlops_kit.development.grid import _pipeline
    from mlops_kit.development import Choice
    from mlops_kit.development import save_pipeline, untrusted_types
    variant = DataVariant("scaled", diabetes.numerical)
    for algorithm in default_algorithms(diabetes):
        for corner in (0, 1):
            params = {name: space.options[-corner] if isinstance(space, Choice) else (space.low, space.high)[corner]
                      for name, space in algorithm.space.items()}
            pipeline = _pipeline(variant, algorithm, params, seed=0).fit(diabetes.X, diabetes.y)
            save_pipeline(pipeline, tmp_path / f"{algorithm.name}-{corner}.skops")
            assert untrusted_types(tmp_path / f"{algorithm.name}-{corner}.skops") == [], algorithm.name
