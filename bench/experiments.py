"""Our experiment grid (TPE with pruning) against scikit-learn's GridSearchCV, over the same space, in one run.

The grid is written out here: every data variant x every algorithm x 3-4 values of each algorithm's main
hyperparameters (102 candidates). Our study searches the same ranges, continuously. Both score ROC AUC on the same
forward-chaining folds of the case study, on one core.

"Reached" means a completed trial whose full cross-validated mean is within --tolerance (0.002) of GridSearchCV's best;
a seed that never reaches it counts as our whole run. Printed: the median over --seeds seeds of the time our study needs
to reach it, as a ratio to GridSearchCV's total time (target: at most 0.3); and trials per minute with 1 and with 2
worker processes (`mlops-kit experiment worker`) sharing a journal file (target: at least 1.6x on 2 cores).

    python bench/experiments.py [--rows 6000] [--seeds 3] [--worker-seconds 120]
"""
import argparse, os, platform, signal, statistics, subprocess, sys, tempfile, time, warnings
from pathlib import Path

import numpy as np
import optuna
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from mlops_kit.development import (Algorithm, CaseStudySample, ExperimentGrid, FloatRange, IntRange, cv_folds,
                                   default_data_variants, make_storage)
from mlops_kit.lifecycle import Criteria

FOLDS = 4
# The main hyperparameters: the values GridSearchCV tries, and the range our study searches (the same ends).
GRID_VALUES = {
    "logistic_regression": (LogisticRegression, {"C": [0.01, 0.1, 1.0, 10.0]}, {"max_iter": 1000}),
    "decision_tree": (DecisionTreeClassifier, {"max_depth": [2, 4, 8, 12], "min_samples_leaf": [1, 10, 50]}, {}),
    "random_forest": (RandomForestClassifier, {"n_estimators": [50, 100, 150], "max_depth": [4, 8, 16]}, {}),
    "hist_gradient_boosting": (HistGradientBoostingClassifier,
                               {"learning_rate": [0.03, 0.1, 0.3], "max_leaf_nodes": [15, 31, 63]}, {}),
}


def search_range(values: list):
    "The continuous range spanning the grid's `values`, on a log scale when they span a factor of 10 or more"
    low, high = min(values), max(values)
    log = high / low >= 10
    return IntRange(low, high, log=log) if all(isinstance(value, int) for value in values) else FloatRange(low, high, log=log)


def algorithms() -> list[Algorithm]:
    return [Algorithm(name, estimator, {parameter: search_range(values) for parameter, values in grid.items()}, fixed,
                      simple=name == "logistic_regression")
            for name, (estimator, grid, fixed) in GRID_VALUES.items()]


def grid_search(variants, dataset, folds) -> tuple[GridSearchCV, float]:
    "GridSearchCV over every variant x algorithm x value, on `folds`, one core; and its total seconds"
    param_grid = [{"prepare": [variant.build() for variant in variants],
                   "model": [estimator(random_state=0, **fixed) if "random_state" in estimator().get_params() else estimator(**fixed)],
                   **{f"model__{parameter}": values for parameter, values in grid.items()}}
                  for estimator, grid, fixed in GRID_VALUES.values()]
    search = GridSearchCV(Pipeline([("prepare", variants[0].build()), ("model", LogisticRegression())]), param_grid,
                          scoring="roc_auc", cv=folds, n_jobs=1, refit=False, error_score="raise")
    started = time.perf_counter()
    search.fit(dataset.X, dataset.y)
    return search, time.perf_counter() - started


def candidates(search: GridSearchCV) -> int:
    return len(search.cv_results_["params"])


def seconds_to_reach(sample, variants, target: float, budget: float, seed: int) -> tuple[float, int]:
    "Seconds until our study first completes a trial scoring >= `target` (`budget` if never), and the trials it ran"
    grid = ExperimentGrid(variants, algorithms(), Criteria("roc_auc >= 0.5"), cv=FOLDS, seed=seed)
    started = time.time()
    grid.run(sample, n_trials=None, timeout=budget, show_progress=False)
    reached = [trial.datetime_complete.timestamp() - started for trial in grid.study_.trials
               if trial.state == optuna.trial.TrialState.COMPLETE and trial.value >= target]
    return (min(reached) if reached else budget), len(grid.study_.trials)


def trials_per_minute(sample, variants, workers: int, seconds: float) -> float:
    "Trials finished per minute by `workers` processes of `mlops-kit experiment worker` sharing one journal file"
    with tempfile.TemporaryDirectory() as folder:
        storage, study = f"journal:{folder}/study.journal", f"throughput-{workers}"
        grid = ExperimentGrid(variants, algorithms(), Criteria("roc_auc >= 0.5"), cv=FOLDS, seed=0, storage=storage,
                              study_name=study)
        grid.create_study(sample)
        command = [str(Path(sys.executable).parent / "mlops-kit"), "experiment", "worker", "--storage", storage,
                   "--study", study, "--trials", "100000"]
        started = time.time()
        processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                     for _ in range(workers)]
        time.sleep(seconds)
        for process in processes: os.killpg(process.pid, signal.SIGKILL)
        for process in processes: process.wait()
        trials = optuna.load_study(study_name=study, storage=make_storage(storage)).trials
        finished = [trial for trial in trials
                    if trial.datetime_complete is not None and trial.datetime_complete.timestamp() <= started + seconds]
        return len(finished) / seconds * 60


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000, help="rows of the case study's clean months (default: 6000)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of our study (default: 3)")
    parser.add_argument("--tolerance", type=float, default=0.002, help="how close to GridSearchCV's best counts (0.002)")
    parser.add_argument("--worker-seconds", type=float, default=120, help="how long each throughput run lasts (120)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sample = CaseStudySample(n=args.rows, seed=42, sample_seed=0)
    dataset = sample.load()
    variants = default_data_variants(dataset)
    folds = cv_folds(FOLDS, dataset.y, dataset.frame[dataset.time_column])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{len(dataset.frame):,} rows, {FOLDS} forward-chaining folds, one core per search")

    with threadpool_limits(1):
        search, grid_seconds = grid_search(variants, dataset, folds)
        best = search.best_score_
        print(f"GridSearchCV: {candidates(search)} candidates, best ROC AUC {best:.4f}, {grid_seconds:.1f} s")
        runs = [seconds_to_reach(sample, variants, best - args.tolerance, grid_seconds, seed) for seed in range(args.seeds)]
    for seed, (seconds, trials) in enumerate(runs):
        print(f"  our study, seed {seed}: reached {best - args.tolerance:.4f} after {seconds:.1f} s "
              f"({seconds / grid_seconds:.2f} of GridSearchCV's time; {trials} trials in the run)")
    ratio = statistics.median(seconds / grid_seconds for seconds, _ in runs)
    print(f"time to reach GridSearchCV's best (within {args.tolerance}), median over {args.seeds} seeds: "
          f"{ratio:.2f} x GridSearchCV's total time (target <= 0.3)")

    one = trials_per_minute(sample, variants, 1, args.worker_seconds)
    two = trials_per_minute(sample, variants, 2, args.worker_seconds)
    print(f"journal-file workers: 1 process {one:.1f} trials/min, 2 processes {two:.1f} trials/min: "
          f"{two / one:.2f}x (target >= 1.6x)")


if __name__ == "__main__":
    main()
