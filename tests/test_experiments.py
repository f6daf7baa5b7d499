"""Experiment grids: the conditional search space, constraints, pruning, reproducibility, several workers on a journal
file and on PostgreSQL, a killed worker whose trial is retried, and bad input refused without damaging a stored study."""
import multiprocessing, os, signal, subprocess, sys, time
from datetime import datetime

import optuna
import pytest

from mlops_kit.experiments import (Algorithm, CaseStudySample, check_winner, compare_baselines, parameter_importances, plot_history,
                                   plot_importances, plot_scores, ExperimentGrid, FloatRange, IntRange, StorageConnectionError,
                                   cv_folds, default_algorithms, default_data_variants, fail_stale_trials, fit_best, make_storage,
                                   run_worker)
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
    "roc_auc to optimise; recall and precision tracked (always met) unless `others` replace them"
    return Criteria("roc_auc >= 0.7", list(others) or ["recall >= 0", "precision >= 0"])


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


def test_the_best_is_compared_with_baselines_and_checked_on_repeated_folds(sequential):
    baselines = compare_baselines(sequential)
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
    for _ in range(2400):  # wait (up to a few minutes) for a finished trial, and a running one well inside its fits
        trials = study.get_trials(deepcopy=False)
        running = [trial for trial in trials if trial.state == optuna.trial.TrialState.RUNNING
                   and 0.1 <= (datetime.now() - trial.datetime_start).total_seconds() <= 0.6]
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


def test_bad_input_gets_a_clear_error(variants, sample):
    with pytest.raises(ValueError, match="has no algorithms: give at least one Algorithm"):
        ExperimentGrid(variants, [], tracked_criteria()).run(SAMPLE, n_trials=1)
    with pytest.raises(ValueError, match="Unknown metric 'recal'"):
        ExperimentGrid(variants, fast_algorithms(), ["roc_auc >= 0.7", "recal >= 0.5"]).run(SAMPLE, n_trials=1)
    with pytest.raises(ValueError, match=r"low is above high; swap the bounds: IntRange\(2, 16\)"):
        IntRange(16, 2)
    with pytest.raises(ValueError, match="data variant 'scaled' uses 'region'"):
        ExperimentGrid(variants, fast_algorithms(), tracked_criteria()).run(sample.frame.drop(columns="region"), sample.y, n_trials=1)
    with pytest.raises(ValueError, match="must hold both 0"):
        ExperimentGrid(variants, fast_algorithms(), tracked_criteria()).run(sample.frame, sample.y + 1, n_trials=1)


def test_a_storage_that_cannot_connect_is_a_clear_error():
    url = "postgresql://nobody:x@127.0.0.1:1/none"
    with pytest.raises(StorageConnectionError) as raised:
        make_storage(url)
    message = str(raised.value)
    assert "postgresql://nobody:***@127.0.0.1:1/none" in message and "Check that the database server is running" in message
    assert ":x@" not in message
    grid = ExperimentGrid(default_data_variants(SAMPLE.load())[:1], fast_algorithms(), tracked_criteria(), storage=url)
    with pytest.raises(StorageConnectionError, match="127.0.0.1:1"):
        grid.run(SAMPLE, n_trials=1)


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
    data = sequential._data_
    windows = {}
    for repeat in (1, 2, 3):
        for fold, (train, test) in enumerate(cv_folds(sequential.cv, data.y, data.times, sequential.seed, repeat=repeat)):
            windows[(repeat, fold)] = (len(train), test.tobytes())
    distinct = len(set(windows.values()))
    assert distinct < len(windows)  # the case study's months do repeat folds across repeats
    for _, scored in check.scores.groupby("trial"):
        used = [windows[(row.repeat, row.fold)] for row in scored.itertuples()]
        assert len(used) == len(set(used)) == distinct
