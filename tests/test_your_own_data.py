"""Your own data, any tabular task: the acceptance tests of issue 14, run as a practitioner runs the library.

Four data sets go through the whole lifecycle with the documented public calls:
`Dataset` -> schema -> `default_data_variants` -> `default_algorithms` -> `ExperimentGrid(...).run` -> `fit_best` ->
`ModelRegistry.register` + `promote` -> the champion loaded in a fresh process -> served by
`BackgroundServer(create_app(registry, name=..., log=...))` (`/predict`, `/feedback`) -> `PredictionLog.window()` ->
`performance_report` -> `MonitoringLoop` -> `retrain`. Every figure the kit reports is checked against scikit-learn's,
computed directly on the same labels and predictions.

- diabetes: regression, judged on RMSE (and R2); watched in windows of rows in their order;
- wine: multiclass, its cultivars named 'barolo', 'grignolino', 'barbera' so that class names travel end to end;
- breast cancer: binary with the labels 'malignant' / 'benign' and positive_label='malignant';
- plans: a multiclass set built here, with a date column, numbers and text with gaps, three string classes and a
  change planted in its later months: trained on the early months, watched month by month, retrained.

Then `mlops-kit serve` (the console script, a real process) on a multiclass model with class names, called by the
Triton HTTP client; and every binary-only call on another task, refused with a message naming the task and what to
use instead, nothing saved changed.
"""
import hashlib, json, math, subprocess, sys, textwrap, time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (f1_score, log_loss, mean_squared_error, precision_score, r2_score, recall_score, roc_auc_score)

from mlops_kit.data import Dataset, Schema, infer_schema, load_real_dataset
from mlops_kit.errors import MlopsKitError
from mlops_kit.development import ExperimentGrid, default_algorithms, default_data_variants, fit_best
from mlops_kit.lifecycle import Criteria
from mlops_kit.deployment import MonitoringLoop, performance_report
from mlops_kit.loop_back import retrain
from mlops_kit.development import ModelRegistry
from mlops_kit.deployment import BackgroundServer, PredictionLog, create_app
from conftest import file_hash, folder_hashes, serve_command, triton_float_inputs, wait_until_ready

CULTIVARS = {0: "barolo", 1: "grignolino", 2: "barbera"}


# ---- the four data sets ------------------------------------------------------------------------------------------

def shuffled(frame:pd.DataFrame)->pd.DataFrame:
    "scikit-learn's sets are sorted by label; shuffled once, their rows come in a fair order"
    return frame.sample(frac=1, random_state=0).reset_index(drop=True)


def wine_named()->pd.DataFrame:
    wine = load_real_dataset("wine")
    return shuffled(wine.frame.assign(cultivar=wine.y.map(CULTIVARS)))


def tumours_in_words()->pd.DataFrame:
    cancer = load_real_dataset("breast_cancer")
    return shuffled(cancer.frame.assign(diagnosis=cancer.y.map({1: "malignant", 0: "benign"})).drop(columns="malignant"))


PLAN_MONTHS = pd.date_range("2024-01-01", periods=12, freq="MS")
PLAN_CHANGE = "2024-10-01"  # from October, where customers live changes the plan they choose (a change of concept)


def plans(rows_per_month:int=160, seed:int=0)->pd.DataFrame:
    "Each month's customers and the plan they chose, 'basic', 'standard' or 'premium'; numbers and text with gaps"
    rng = np.random.default_rng(seed)
    month = PLAN_MONTHS.repeat(rows_per_month)
    spend, tenure = rng.gamma(4, 15, len(month)), rng.integers(1, 72, len(month)).astype(float)
    region = rng.choice(["north", "south", "east", "west"], len(month))
    device = rng.choice(["phone", "laptop", "tablet"], len(month), p=[0.5, 0.3, 0.2])
    changed = month >= PLAN_CHANGE  # from then on, the north and the south trade places, twice as far apart
    region_effect = np.select([region == "north", region == "south"], [0.6, -0.6], 0.0) * np.where(changed, -2, 1)
    score = (spend - 60) / 30 + (tenure - 36) / 30 + region_effect + np.where(device == "laptop", 0.5, 0.0) + rng.normal(0, 0.5, len(month))
    frame = pd.DataFrame(dict(month=month, spend=spend.round(2), tenure=tenure, region=region, device=device,
                              plan=np.select([score < -0.6, score < 0.6], ["basic", "standard"], "premium")))
    frame.loc[rng.random(len(frame)) < 0.05, "tenure"] = np.nan
    frame.loc[rng.random(len(frame)) < 0.05, "region"] = None
    return frame


def label_changed(frame:pd.DataFrame, target:str)->pd.DataFrame:
    "The later rows of a scikit-learn set after a planted change: true values 80 higher, or the classes' names rotated"
    values = frame[target]
    if values.dtype.kind == "f" or values.nunique() > 10: return frame.assign(**{target: values + 80})
    classes = sorted(values.unique())
    return frame.assign(**{target: values.map(dict(zip(classes, classes[1:] + classes[:1])))})


# name -> how to make its Dataset, the criteria, what to watch. `split`: rows (or months) learnt from; the rest is served
CHAINS = {
    "diabetes": dict(criteria=Criteria("rmse <= 70", ["r2 >= 0.2"]), window=48, min_labels=30),
    "wine": dict(criteria=Criteria("f1_macro >= 0.8", ["log_loss <= 1.0"]), window=29, min_labels=20),
    "tumours": dict(criteria=Criteria("recall >= 0.8", ["precision >= 0.8", "roc_auc >= 0.9"]), window=63, min_labels=30),
    "plans": dict(criteria=Criteria("f1_macro >= 0.65", ["log_loss <= 1.0"]), window="MS", min_labels=50),
}


def dataset_of(name:str, frame:pd.DataFrame|None=None, **roles)->Dataset:
    "The Dataset of chain `name` on `frame` (default: all of its rows)"
    if name == "diabetes":
        diabetes = load_real_dataset("diabetes")
        return Dataset(diabetes.frame if frame is None else frame, "progression", diabetes.features, name="diabetes", **roles)
    if name == "wine":
        frame = wine_named() if frame is None else frame
        return Dataset(frame, "cultivar", [column for column in frame.columns if column != "cultivar"], name="wine", **roles)
    if name == "tumours":
        frame = tumours_in_words() if frame is None else frame
        return Dataset(frame, "diagnosis", [column for column in frame.columns if column != "diagnosis"], name="tumours",
                       positive_label="malignant", **roles)
    frame = plans() if frame is None else frame
    return Dataset(frame, "plan", ["spend", "tenure", "region", "device"], name="plans", time_column="month", **roles)


def split_rows(name:str)->tuple[pd.DataFrame, pd.DataFrame]:
    "The rows learnt from, and the later rows served (with the planted change for the scikit-learn sets)"
    full = dataset_of(name)
    if name == "plans": return full.frame[full.frame.month < "2024-07-01"], full.frame[full.frame.month >= "2024-07-01"]
    cut = round(len(full.frame) * 0.67)
    frame = full.frame.copy() if name != "diabetes" else shuffled(full.frame)
    return frame.iloc[:cut], label_changed(frame.iloc[cut:], full.target)


FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import pandas as pd
    from mlops_kit.development import ModelRegistry
    registry = ModelRegistry(sys.argv[1])
    bundle = registry.load(sys.argv[2], alias="champion")
    rows = pd.read_pickle(sys.argv[3])
    probabilities = None if bundle.task == "regression" else bundle.predict_proba(rows).tolist()
    print(json.dumps(dict(version=bundle.version, task=bundle.task, classes=bundle.classes,
                          predictions=bundle.predict(rows).tolist(), probabilities=probabilities)))
""")


def predictions_in_a_fresh_process(folder:Path, name:str, rows:pd.DataFrame, tmp:Path)->dict:
    "A new python process loads the registry's champion `name` and prints its predictions on `rows` as JSON"
    rows.to_pickle(tmp / "rows.pkl")
    finished = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(folder), name, str(tmp / "rows.pkl")],
                              capture_output=True, text=True, timeout=180, cwd=tmp)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout)


@pytest.fixture(scope="module", params=list(CHAINS))
def chain(request, tmp_path_factory):
    "One data set through development, the registry, serving with feedback and the prediction log"
    name, settings = request.param, CHAINS[request.param]
    tmp = tmp_path_factory.mktemp(name)
    learnt, served = split_rows(name)
    development = dataset_of(name, learnt)
    schema = infer_schema(development)
    variants, algorithms = default_data_variants(development), default_algorithms(development)
    grid = ExperimentGrid(variants, algorithms[:2], settings["criteria"], cv=3, seed=0).run(development, n_trials=4, show_progress=False)
    best = fit_best(grid)
    registry = ModelRegistry(tmp / "models")
    version = registry.register(best.model, development, settings["criteria"], {metric: values["mean"] for metric, values in best.cv_metrics.items()},
                                name=name, variant=best.data_variant, algorithm=best.algorithm, seed=best.seed, threshold=best.threshold)
    registry.promote(name, version.version)
    fresh = predictions_in_a_fresh_process(registry.folder, name, served[development.features], tmp)
    with BackgroundServer(create_app(registry, name=name, log=tmp / "log.db")) as client:
        answers = [client.predict(part[development.features]) for part in parts_of(served, name, settings["window"])]
        answer = pd.concat(answers)
        received = client.feedback(dict(zip(answer.id, served[development.target].loc[answer.index])))
    with PredictionLog(tmp / "log.db") as log: window = log.window()
    return dict(name=name, settings=settings, development=development, served=served, schema=schema, variants=variants,
                algorithms=algorithms, grid=grid, best=best, registry=registry, version=version, fresh=fresh, answer=answer,
                received=received, window=window, tmp=tmp)


def parts_of(served:pd.DataFrame, name:str, window)->list:
    "The served rows as the requests a client sends: one per month for data with time, else one per window of rows"
    if name == "plans": return [group for _, group in served.groupby("month")]
    return [served.iloc[start:start + window] for start in range(0, len(served), window)]


# ---- 1. each data set through the lifecycle ------------------------------------------------------------------------

def test_the_dataset_knows_its_task_and_the_grid_fits_it(chain):
    development, best = chain["development"], chain["best"]
    expected = {"diabetes": ("regression", None), "wine": ("multiclass", ["barbera", "barolo", "grignolino"]),
                "tumours": ("binary", ["benign", "malignant"]), "plans": ("multiclass", ["basic", "premium", "standard"])}[chain["name"]]
    assert (development.task, development.classes) == expected
    assert isinstance(chain["schema"], Schema) and set(chain["schema"].columns) == set(development.frame.columns)
    assert all(set(variant.columns) <= set(development.features) for variant in chain["variants"])
    names = [algorithm.name for algorithm in chain["algorithms"]]
    assert names[0] == ("ridge" if development.task == "regression" else "logistic_regression")
    assert (best.task, best.classes) == expected and best.meets_criteria
    assert best.threshold == (0.5 if development.task == "binary" else None)
    assert len(chain["grid"].leaderboard()) == 4
    if chain["name"] == "plans": assert best.cv["kind"] == "time"  # folds forward in time on data with dates


def test_the_champion_loaded_in_a_fresh_process_predicts_as_the_pipeline(chain):
    best, served, fresh = chain["best"], chain["served"], chain["fresh"]
    rows = served[chain["development"].features]
    assert (fresh["version"], fresh["task"], fresh["classes"]) == (1, best.task, best.classes)
    if best.task == "regression":
        np.testing.assert_allclose(fresh["predictions"], best.predict(rows), rtol=1e-12)
        assert fresh["probabilities"] is None
        return
    assert fresh["predictions"] == best.predict(rows).tolist()  # the class names themselves, never their indices
    assert set(fresh["predictions"]) <= set(best.classes)
    np.testing.assert_allclose(fresh["probabilities"], best.model.predict_proba(rows))


def test_served_answers_are_labels_with_per_class_probabilities_or_values(chain):
    best, answer, served = chain["best"], chain["answer"], chain["served"]
    rows = served[chain["development"].features].loc[answer.index]
    assert (answer.model_version == 1).all() and len(answer) == len(served)
    if best.task == "regression":
        np.testing.assert_allclose(answer.prediction.astype(float), best.predict(rows), rtol=1e-12)
        assert answer.probability.isna().all() and answer.probabilities.isna().all()
        return
    assert answer.prediction.tolist() == best.predict(rows).tolist()
    assert all(isinstance(label, str) for label in answer.prediction)
    np.testing.assert_allclose(np.array(answer.probabilities.tolist()), best.model.predict_proba(rows))  # columns in `classes` order
    assert list(best.model.classes_) == best.classes
    if best.task == "binary": np.testing.assert_allclose(answer.probability, best.model.predict_proba(rows)[:, best.classes.index("malignant")])


def test_feedback_and_the_log_keep_the_labels(chain):
    window, served, target = chain["window"], chain["served"], chain["development"].target
    assert chain["received"] == len(served) == len(window)
    truth = served[target].loc[chain["answer"].index].tolist()
    by_id = window.set_index("id").loc[chain["answer"].id]
    assert by_id.label.tolist() == truth if chain["best"].task != "regression" else np.allclose(by_id.label, truth)
    assert by_id.prediction.tolist() == chain["answer"].prediction.tolist()


def sklearn_figures(name:str, labels, predictions, probabilities, classes)->dict:
    "The criteria's metrics computed by scikit-learn directly"
    labels, predictions = list(labels), list(predictions)
    if name == "diabetes":
        return dict(rmse=mean_squared_error(labels, predictions) ** 0.5, r2=r2_score(labels, predictions))
    if name == "tumours":
        positive = np.array(probabilities)[:, classes.index("malignant")]
        return dict(recall=recall_score(labels, predictions, pos_label="malignant"),
                    precision=precision_score(labels, predictions, pos_label="malignant", zero_division=0),
                    roc_auc=roc_auc_score(np.array(labels) == "malignant", positive))
    return dict(f1_macro=f1_score(labels, predictions, average="macro"), log_loss=log_loss(labels, np.array(probabilities), labels=classes))


def test_the_performance_report_equals_scikit_learn_on_the_same_labels(chain):
    window, best, name = chain["window"], chain["best"], chain["name"]
    report = performance_report(window, chain["settings"]["criteria"], task=best.task, positive_label=best.positive_label,
                                classes=best.classes, min_labels=chain["settings"]["min_labels"], draws=0)
    assert report.task == best.task and report.labelled == len(window)
    probabilities = None if best.task == "regression" else window.probabilities.tolist()
    expected = sklearn_figures(name, window.label, window.prediction, probabilities, best.classes)
    assert report.measured == pytest.approx(expected, rel=1e-12)
    rows = chain["served"][chain["development"].features]  # the same figures from the pipeline and the true labels, no service between
    direct = sklearn_figures(name, chain["served"][chain["development"].target], best.predict(rows),
                             None if best.task == "regression" else best.model.predict_proba(rows), best.classes)
    assert report.measured == pytest.approx(direct, rel=1e-9)


def cases_of(chain)->pd.DataFrame:
    "The log's window, with each case's month for the data with dates (a practitioner keeps when each case happened)"
    window = chain["window"]
    if chain["name"] != "plans": return window
    months = pd.Series(chain["served"].month.loc[chain["answer"].index].to_numpy(), index=chain["answer"].id.to_numpy())
    return window.assign(month=months.loc[window.id].to_numpy())


@pytest.fixture(scope="module")
def watched(chain):
    bundle = chain["registry"].load(chain["name"], alias="champion")
    cases = cases_of(chain)
    time_column = "month" if chain["name"] == "plans" else "received_at"
    loop = MonitoringLoop(bundle.reference, chain["settings"]["criteria"], window=chain["settings"]["window"], time_column=time_column,
                          target=chain["development"].target, reference_predictions=bundle.predict(bundle.reference), task=bundle.task,
                          positive_label=bundle.positive_label, classes=bundle.classes, min_labels=chain["settings"]["min_labels"],
                          alert_on=("input", "performance", "prediction", "target")).run(cases)
    return dict(loop=loop, cases=cases, bundle=bundle)


def window_groups(chain, cases:pd.DataFrame)->list:
    "The cases of each window as the loop should cut them: calendar months, or windows of rows in their order"
    if chain["name"] == "plans": return [group for _, group in cases.groupby(cases.month.dt.strftime("%Y-%m"))]
    size = chain["settings"]["window"]
    return [cases.iloc[start:start + size] for start in range(0, len(cases), size)]


def test_the_monitoring_loop_measures_the_primary_metric_per_window_as_scikit_learn(chain, watched):
    loop, cases, bundle = watched["loop"], watched["cases"], watched["bundle"]
    groups = window_groups(chain, cases)
    primary = chain["settings"]["criteria"].primary.metric
    assert len(loop.performance_) == len(groups) and primary in loop.performance_
    for row, group in zip(loop.performance_.itertuples(), groups):
        if len(group) < chain["settings"]["min_labels"]:
            assert row.status == "waiting for labels" and math.isnan(getattr(row, primary))
            continue
        probabilities = None if bundle.task == "regression" else group.probabilities.tolist()
        expected = sklearn_figures(chain["name"], group.label, group.prediction, probabilities, bundle.classes)
        assert getattr(row, primary) == pytest.approx(expected[primary], rel=1e-12), row.window
    assert {"prediction", "target"} <= set(loop.drift_["of"])  # the outputs' drift next to the inputs'


def test_the_planted_change_fails_the_criteria_where_it_is_and_nowhere_else(chain, watched):
    performance = watched["loop"].performance_.set_index("window")
    failed = performance.index[performance.status == "criteria failed"].tolist()
    if chain["name"] == "plans":
        assert failed == ["2024-10", "2024-11", "2024-12"]
        assert (performance.loc[["2024-07", "2024-08", "2024-09"], "status"] == "criteria met").all()
        assert any(alert.kind == "performance" and alert.window == "2024-10" for alert in watched["loop"].alerts_)
    else:  # every later row of the scikit-learn sets carries the change
        measured = performance[performance.status != "waiting for labels"]
        assert len(measured) and (measured.status == "criteria failed").all()


def test_retraining_on_the_newer_data_registers_a_better_version(chain):
    name, criteria, registry = chain["name"], chain["settings"]["criteria"], chain["registry"]
    recent = dataset_of(name, served_with_labels(chain))
    champion = registry.load(name, alias="champion")
    result = retrain(registry, recent, criteria, name, n_trials=3)
    assert result.promoted and result.challenger_version == 2 and registry.champion(name).version == 2
    assert result.comparison.metric.tolist() == [criterion.metric for criterion in criteria]  # judged on the same criteria
    holdout = recent.frame.iloc[round(len(recent.frame) * 0.7):] if recent.time_column is None else \
        recent.frame[recent.frame.month >= recent.frame.month.quantile(0.7)]
    rows = holdout[recent.features]
    probabilities = None if champion.task == "regression" else champion.predict_proba(rows)
    expected = sklearn_figures(name, holdout[recent.target], champion.predict(rows), probabilities, champion.classes)
    assert result.comparison.set_index("metric").champion.to_dict() == pytest.approx(expected, rel=1e-9)
    retrained = registry.load(name, alias="champion")
    assert retrained.card["training_data"]["rows"] == len(recent.frame) - len(holdout)  # trained on the newer data, not the old
    assert retrained.criteria.to_dict() == criteria.to_dict() and retrained.classes == champion.classes


def served_with_labels(chain)->pd.DataFrame:
    "The served rows with their true labels: the recent labelled data a retraining learns from"
    served = chain["served"]
    return served[served.month >= PLAN_CHANGE] if chain["name"] == "plans" else served.reset_index(drop=True)


# ---- 2. `mlops-kit serve` on a multiclass model with class names, called by the Triton HTTP client -------------------

def test_the_serve_command_answers_the_triton_client_with_class_names_and_their_probabilities(tmp_path):
    import tritonclient.http as triton_http
    wine = dataset_of("wine")
    criteria = Criteria("f1_macro >= 0.8", ["balanced_accuracy >= 0.8"])
    grid = ExperimentGrid(default_data_variants(wine), default_algorithms(wine)[:1], criteria, cv=3).run(wine, n_trials=2, show_progress=False)
    best = fit_best(grid)
    registry = ModelRegistry(tmp_path / "models")
    registry.promote("wine", registry.register(best.model, wine, criteria, {metric: values["mean"] for metric, values in best.cv_metrics.items()},
                                               name="wine").version)
    frame = wine.X.head(9)
    with serve_command("--models", registry.folder, "--name", "wine", "--log", tmp_path / "log.db") as (url, process):
        wait_until_ready(url, process, "wine")
        client = triton_http.InferenceServerClient(url=url.removeprefix("http://"))
        try:
            assert client.is_server_ready() and client.is_model_ready("wine")
            metadata = client.get_model_metadata("wine")
            outputs = [triton_http.InferRequestedOutput(name, binary_data=False) for name in ("predict", "predict_proba", "prediction_id")]
            result = client.infer("wine", triton_float_inputs(frame), outputs=outputs)
        finally: client.close()
    classes = ["barbera", "barolo", "grignolino"]
    assert metadata["parameters"]["classes"] == classes and metadata["parameters"]["task"] == "multiclass"
    described = {output["name"]: output for output in metadata["outputs"]}
    assert described["predict"]["datatype"] == "BYTES" and described["predict_proba"]["parameters"] == {"classes": classes}
    labels = [label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("predict").tolist()]
    assert labels == best.predict(frame).tolist() and set(labels) <= set(classes)
    assert result.get_output("predict")["datatype"] == "BYTES"
    probabilities = result.as_numpy("predict_proba")
    assert probabilities.shape == (len(frame), 3)
    np.testing.assert_allclose(probabilities, best.model.predict_proba(frame))  # one column per class, in the metadata's order
    assert list(best.model.classes_) == classes


# ---- 3. every binary-only call on another task: a clear error naming the task and what to use instead ---------------

from mlops_kit.development import decision_threshold
from mlops_kit.lifecycle import MetricRegistry, cost_metric


@pytest.fixture(scope="module")
def other_tasks(tmp_path_factory):
    "A multiclass (wine, class names) and a regression (diabetes) champion in one registry, their grids, and served-like cases"
    tmp = tmp_path_factory.mktemp("other_tasks")
    metrics = MetricRegistry.default()
    metrics.register(cost_metric("cost_per_1000", 10, 100))
    registry, found = ModelRegistry(tmp / "models"), {}
    for name, criteria in (("wine", Criteria("f1_macro >= 0.8")), ("diabetes", Criteria("rmse <= 70"))):
        data = dataset_of(name)
        grid = ExperimentGrid(default_data_variants(data), default_algorithms(data)[:1], criteria, cv=3, storage=tmp / f"{name}.journal",
                              study_name=name).run(data, n_trials=1, show_progress=False)
        best = fit_best(grid)
        registry.promote(name, registry.register(best.model, data, criteria, {criteria.primary.metric: best.cv_metrics[criteria.primary.metric]["mean"]},
                                                 name=name).version)
        rows = data.X.head(80)
        cases = pd.DataFrame(dict(prediction=best.predict(rows), label=data.y.head(80).to_numpy(),
                                  received_at=pd.Timestamp("2025-01-01") + pd.to_timedelta(np.arange(80), "min")))
        if name == "wine": cases["probabilities"] = list(best.model.predict_proba(rows))
        found[name] = dict(data=data, grid=grid, best=best, criteria=criteria, cases=cases, journal=tmp / f"{name}.journal")
    return dict(registry=registry, metrics=metrics, tmp=tmp, **found)


def binary_only_calls(setup)->list:
    "(what, call, message) for each binary-only call on a multiclass or a regression model or data"
    wine, diabetes, registry, metrics = setup["wine"], setup["diabetes"], setup["registry"], setup["metrics"]
    cost = Criteria("cost_per_1000 <= 500", registry=metrics)
    grid_of = lambda task, **options: ExperimentGrid(default_data_variants(task["data"]), default_algorithms(task["data"])[:1], task["criteria"], cv=3,
                                                    storage=task["journal"], study_name=task["grid"].study_name, **options)
    with_costs = lambda task: Dataset(task["data"].frame, task["data"].target, task["data"].features, costs={"false_positive": 10, "false_negative": 100})
    return [
        ("costs on a multiclass Dataset", lambda: with_costs(wine), "are for a binary target; 'cultivar' is a multiclass target: leave them out and judge models with criteria on the task's metrics"),
        ("costs on a regression Dataset", lambda: with_costs(diabetes), "'progression' is a regression target: leave them out"),
        ("positive_label on a multiclass Dataset", lambda: dataset_of("wine", positive_label="barolo"), "positive_label is for a binary target; 'cultivar' is a multiclass target: leave it out"),
        ("positive_label on a regression Dataset", lambda: dataset_of("diabetes", positive_label=1), "'progression' is a regression target: leave it out"),
        ("a cost criterion on a multiclass grid", lambda: ExperimentGrid(default_data_variants(wine["data"]), default_algorithms(wine["data"])[:1], cost,
                                                                        storage=wine["journal"], study_name="wine").run(wine["data"], n_trials=1, show_progress=False),
         "'cost_per_1000 <= 500' cannot judge a multiclass model: cost_per_1000 fits binary. Metrics for multiclass: accuracy"),
        ("a binary metric on a regression grid", lambda: ExperimentGrid(default_data_variants(diabetes["data"]), default_algorithms(diabetes["data"])[:1],
                                                                       Criteria("recall >= 0.8"), storage=diabetes["journal"], study_name="diabetes").run(diabetes["data"], n_trials=1, show_progress=False),
         "'recall >= 0.8' cannot judge a regression model: recall fits binary. Metrics for regression: rmse"),
        ("a threshold on a multiclass grid", lambda: grid_of(wine, threshold=0.3).run(wine["data"], n_trials=1, show_progress=False),
         "threshold=0.3 is for a binary task (the probability from which the positive class is predicted); this data is a multiclass task, so leave threshold=None"),
        ("a threshold on a regression grid", lambda: grid_of(diabetes, threshold=0.3).run(diabetes["data"], n_trials=1, show_progress=False),
         "this data is a regression task, so leave threshold=None: a regressor predicts numbers"),
        ("decision_threshold of regression criteria", lambda: decision_threshold(diabetes["criteria"]),
         "decision_threshold is for a binary task (the probability from which the positive class is predicted); the criteria 'rmse <= 70' judge a regression model"),
        ("flag of a multiclass best model", lambda: wine["best"].flag(wine["data"].frame), "flag is for a binary task (it flags the positive class from the threshold); this model is multiclass: use predict(frame)"),
        ("flag of a regressor", lambda: diabetes["best"].flag(diabetes["data"].frame), "this model is regression: use predict(frame), which gives its predictions"),
        ("a cost metric on three classes", lambda: metrics.compute("cost_per_1000", [0, 1, 2], [0, 2, 1]),
         "A cost metric is for a binary task: it compares predicted labels of two classes, but y_true and y_pred hold 3 different values"),
        ("register a multiclass model with a threshold", lambda: registry.register(wine["best"].model, wine["data"], wine["criteria"], {"f1_macro": 0.9}, name="wine", threshold=0.4),
         "threshold is for a binary classifier (a probability of its positive class); this model is multiclass: leave it out"),
        ("register a regressor with a threshold", lambda: registry.register(diabetes["best"].model, diabetes["data"], diabetes["criteria"], {"rmse": 50}, name="diabetes", threshold=0.4),
         "this model is regression: leave it out"),
        ("register a multiclass model with a positive label", lambda: registry.register(wine["best"].model, wine["data"], wine["criteria"], {"f1_macro": 0.9}, name="wine", positive_label="barolo"),
         "positive_label is for a binary model, and this one is multiclass: leave it out"),
        ("register a multiclass model judged on a cost", lambda: registry.register(wine["best"].model, wine["data"], cost, {"cost_per_1000": 100}, name="wine"),
         "'cost_per_1000 <= 500' cannot judge a multiclass model"),
        ("positive probability of a multiclass bundle", lambda: registry.load("wine").positive_probability(registry.load("wine").predict_proba(wine["data"].X)),
         "Model 'wine' is multiclass: only a binary model has a positive class; read predict_proba's columns, one per class in `classes`"),
        ("positive probability of a regressor", lambda: registry.load("diabetes").positive_probability(np.zeros((3, 2))), "use predict, which gives numbers"),
        ("recall on multiclass cases", lambda: performance_report(wine["cases"], Criteria("recall >= 0.8")),
         "'recall >= 0.8' cannot judge a multiclass model: recall fits binary. Metrics for multiclass: accuracy"),
        ("recall on regression cases", lambda: performance_report(diabetes["cases"], Criteria("recall >= 0.8")),
         "If the model is a regressor or a multiclass model, judge it on criteria of its task (metric_registry.names(task=...)) and pass task='regression'"),
        ("a cost on multiclass cases", lambda: performance_report(wine["cases"], cost, task="multiclass"), "'cost_per_1000 <= 500' cannot judge a multiclass model"),
        ("positive_label on multiclass cases", lambda: performance_report(wine["cases"], wine["criteria"], positive_label="barolo"),
         "positive_label is for a binary model; a multiclass model has no positive class: leave it out"),
        ("positive_label on regression cases", lambda: performance_report(diabetes["cases"], diabetes["criteria"], positive_label=1),
         "classes and positive_label are for classifiers; a regression model predicts numbers: leave them out"),
        ("positive_label in a regression loop", lambda: MonitoringLoop(diabetes["data"].frame, diabetes["criteria"], window=40, target="progression",
                                                                       positive_label=1).run(diabetes["cases"]), "a regression model predicts numbers: leave them out"),
        ("positive_label in a multiclass loop", lambda: MonitoringLoop(wine["data"].frame, wine["criteria"], window=40, target="cultivar",
                                                                       positive_label="barolo").run(wine["cases"]), "a multiclass model has no positive class"),
        ("retrain a regressor on binary criteria", lambda: retrain(registry, diabetes["data"], Criteria("recall >= 0.8"), "diabetes", n_trials=1),
         "'recall >= 0.8' cannot judge a regression model: recall fits binary. Metrics for regression: rmse"),
        ("retrain a multiclass model on a cost", lambda: retrain(registry, wine["data"], cost, "wine", n_trials=1), "'cost_per_1000 <= 500' cannot judge a multiclass model"),
    ]


def test_every_binary_only_call_on_another_task_is_refused_by_name_and_nothing_saved_changes(other_tasks):
    "Each refusal names the task and the alternative; the registry's files and the studies' journals keep their bytes"
    saved = lambda: (folder_hashes(other_tasks["registry"].folder), file_hash(other_tasks["wine"]["journal"]), file_hash(other_tasks["diabetes"]["journal"]))
    before, failures = saved(), []
    calls = binary_only_calls(other_tasks)
    assert len(calls) >= 25
    for what, call, message in calls:
        try: call()
        except MlopsKitError as error:
            if message not in str(error): failures.append(f"{what}: {error}")
        else: failures.append(f"{what}: not refused")
    assert not failures, "\n".join(failures)
    assert saved() == before
    assert other_tasks["registry"].versions("wine").version.tolist() == [1] and other_tasks["registry"].versions("diabetes").version.tolist() == [1]
