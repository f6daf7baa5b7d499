"""The model registry: skops round trips for every pipeline the experiment grid can build, the allow-list of trusted
types, promotion gated by the success criteria, tamper detection, concurrent registration and exact bundles."""
import dataclasses, functools, itertools, json, subprocess, sys, textwrap, time, warnings

import numpy as np
import pandas as pd
import pytest
import skops
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, KBinsDiscretizer, MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlops_kit.checklists import simple_model
from mlops_kit.data import infer_schema, load_case_study
from mlops_kit.lifecycle import Criteria, Project
from mlops_kit.registry import (TRUSTED_TYPES, IntegrityError, ModelRegistry, PromotionError, RegistryError,
                                UnknownVersionError, UntrustedTypesError, frame_from_json, frame_to_json,
                                load_pipeline, reference_sample, save_pipeline, untrusted_types)

# ---- the experiment grid's pipelines --------------------------------------------------------------------------

NUMERIC_STEPS = {  # how the grid prepares numerical columns (after median imputation)
    "standard": lambda: StandardScaler(),
    "minmax": lambda: MinMaxScaler(),
    "kbins-onehot": lambda: KBinsDiscretizer(n_bins=4, encode="onehot", strategy="quantile", quantile_method="averaged_inverted_cdf"),
    "kbins-ordinal": lambda: KBinsDiscretizer(n_bins=5, encode="ordinal", strategy="uniform"),
}
CLASSIFIERS = {
    "logistic": lambda seed: LogisticRegression(max_iter=500, class_weight="balanced", random_state=seed),
    "tree": lambda seed: DecisionTreeClassifier(max_depth=4, random_state=seed),
    "forest": lambda seed: RandomForestClassifier(n_estimators=8, max_depth=5, random_state=np.random.RandomState(seed)),
    "boosting": lambda seed: HistGradientBoostingClassifier(max_iter=15, early_stopping=True, random_state=seed),
    "baseline": lambda seed: DummyClassifier(strategy="prior"),
}
GRID = list(itertools.product(NUMERIC_STEPS, CLASSIFIERS))


@functools.cache
def training_sample():
    "A small clean sample of the case study: categorical and numerical columns, with nulls"
    sample = load_case_study(seed=7).clean_sample(500, seed=0)
    rng, frame = np.random.default_rng(0), sample.frame.copy()
    for column in ["usage_hours", "payment_method", "monthly_charges", "region"]:  # missing values for the imputers
        frame.loc[rng.random(len(frame)) < 0.08, column] = np.nan
    return dataclasses.replace(sample, frame=frame)


def grid_pipeline(numeric:str, classifier:str, seed:int=0) -> Pipeline:
    "One pipeline of the grid; column selection through ColumnTransformer, dense output for boosting"
    sample = training_sample()
    columns = ColumnTransformer(
        [("numbers", make_pipeline(SimpleImputer(strategy="median"), NUMERIC_STEPS[numeric]()), sample.numerical),
         ("categories", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), sample.categorical)],
        sparse_threshold=0 if classifier == "boosting" else 0.3)
    return Pipeline([("columns", columns), ("model", CLASSIFIERS[classifier](seed))])


@functools.cache
def fitted_grid() -> dict:
    "Every pipeline of the grid (and the kit's `simple_model`), fitted on the sample"
    sample = training_sample()
    pipelines = {f"{numeric}+{classifier}": grid_pipeline(numeric, classifier) for numeric, classifier in GRID}
    selector = ColumnTransformer([("numbers", SimpleImputer(), make_column_selector(dtype_include="number")),
                                  ("categories", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                                   make_column_selector(dtype_exclude="number"))])
    pipelines["selector+logistic"] = make_pipeline(selector, LogisticRegression(max_iter=500))
    pipelines["simple_model"] = simple_model(sample.categorical, sample.numerical)
    with warnings.catch_warnings():  # KBinsDiscretizer merges the quantile bins of small counts such as support_calls
        warnings.filterwarnings("ignore", "Bins whose width are too small", UserWarning)
        return {name: pipeline.fit(sample.X, sample.y) for name, pipeline in pipelines.items()}


@pytest.mark.parametrize("name", [f"{numeric}+{classifier}" for numeric, classifier in GRID] + ["selector+logistic", "simple_model"])
def test_every_grid_pipeline_round_trips_with_identical_probabilities(name, tmp_path):
    pipeline, sample = fitted_grid()[name], training_sample()
    path = save_pipeline(pipeline, tmp_path / "model.skops")
    assert untrusted_types(path) == []
    loaded = load_pipeline(path)
    assert type(loaded) is type(pipeline)
    np.testing.assert_array_equal(loaded.predict_proba(sample.X), pipeline.predict_proba(sample.X))


# What skops 0.16 (with scikit-learn 1.9, numpy 2) reports as not trusted by default for the whole grid. Other
# versions report other types (older ones: sklearn._loss losses and links, numpy.random generators, builtins.slice);
# TRUSTED_TYPES covers those too.
REPORTED_BY_SKOPS_0_16 = {"numpy.dtype", "sklearn.tree._tree.Tree", "sklearn.compose._column_transformer.make_column_selector",
                          "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"}


def test_the_types_skops_reports_for_the_grid_are_all_trusted():
    reported = set().union(*(sio.get_untrusted_types(data=sio.dumps(pipeline)) for pipeline in fitted_grid().values()))
    assert reported <= set(TRUSTED_TYPES), f"not in TRUSTED_TYPES: {sorted(reported - set(TRUSTED_TYPES))}"
    if skops.__version__.startswith("0.16."):
        assert reported == REPORTED_BY_SKOPS_0_16


# ---- the allow-list refuses what it does not know ------------------------------------------------------------

def add_ratio(frame):  # a function of the user's: skops would have to import and call it
    return frame.assign(ratio=frame.iloc[:, 0] / (frame.iloc[:, 1] + 1))


class Clipper(TransformerMixin, BaseEstimator):
    "A custom transformer class"
    def fit(self, X, y=None): return self
    def transform(self, X): return np.clip(X, 0, 100)


@pytest.fixture
def skops_load_calls(monkeypatch):
    "Calls of skops.io.load made during the test"
    calls, original = [], sio.load
    monkeypatch.setattr(sio, "load", lambda *args, **kwargs: calls.append(args) or original(*args, **kwargs))
    return calls


@pytest.mark.parametrize("step, type_name", [(lambda: FunctionTransformer(add_ratio), "test_registry.add_ratio"),
                                              (Clipper, "test_registry.Clipper")])
def test_an_untrusted_type_is_refused_by_name_and_nothing_is_loaded(step, type_name, tmp_path, skops_load_calls):
    sample = training_sample()
    numbers = sample.X[["tenure_months", "support_calls"]]
    pipeline = make_pipeline(step(), LogisticRegression()).fit(numbers, sample.y)
    path = save_pipeline(pipeline, tmp_path / "model.skops")
    assert type_name in untrusted_types(path)
    with pytest.raises(UntrustedTypesError, match=type_name.replace(".", r"\.")) as refused:
        load_pipeline(path)
    assert "trusted_extra" in str(refused.value) and skops_load_calls == []
    loaded = load_pipeline(path, trusted_extra=refused.value.types)  # trusting it is an explicit decision
    np.testing.assert_array_equal(loaded.predict_proba(numbers), pipeline.predict_proba(numbers))


def test_a_file_that_is_not_a_skops_model_is_refused(tmp_path):
    path = tmp_path / "model.skops"
    path.write_text("not a zip")
    with pytest.raises(RegistryError, match="not a skops model file"):
        load_pipeline(path)
    with pytest.raises(FileNotFoundError, match="No model file"):
        load_pipeline(tmp_path / "missing.skops")


def test_a_saved_model_is_never_replaced(tmp_path):
    path = save_pipeline(fitted_grid()["simple_model"], tmp_path / "model.skops")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="never replaced"):
        save_pipeline(fitted_grid()["minmax+tree"], path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["model.skops"]


# ---- the registry ------------------------------------------------------------------------------------------------

CRITERIA = Criteria("recall >= 0.6", ["precision >= 0.3", "latency_p95_ms <= 50"])
PASSING = {"recall": 0.7, "precision": 0.4}
FAILING = {"recall": 0.5, "precision": 0.4}


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path / "churn.journal.json", name="churn")


@pytest.fixture
def registry(tmp_path, project):
    return ModelRegistry(tmp_path / "models", project=project)


def register(registry, metrics, **fields):
    sample = training_sample()
    return registry.register(fitted_grid()["simple_model"], sample, CRITERIA, metrics, seed=0, **fields)


def test_register_writes_a_complete_bundle_and_records_it(registry, project):
    version = register(registry, PASSING, variant="clean", description="baseline logistic regression")
    assert version.version == 1 and version.path == registry.folder / "churn" / "v1"
    assert sorted(path.name for path in version.path.iterdir()) == [
        "card.json", "card.md", "criteria.json", "model.skops", "reference.json", "schema.json"]
    card = json.loads((version.path / "card.json").read_text())
    assert card["algorithm"] == "LogisticRegression" and card["variant"] == "clean" and card["seed"] == 0
    assert card["metrics"] == PASSING and card["accepted"] is True and card["author"]
    assert set(card["library_versions"]) == {"python", "scikit-learn", "skops", "numpy", "pandas", "mlops_kit"}
    assert card["training_data"]["fingerprint"].startswith("sha256:") and card["training_data"]["rows"] == 500
    assert [row["status"] for row in card["criteria_results"]] == ["passed", "passed", "not measured"]
    assert "| latency_p95_ms <= 50 | system | - | not measured |" in (version.path / "card.md").read_text()
    (record,) = project.records("model")
    assert record.name == "churn:v1" and record.data["accepted"] is True
    assert list(registry.versions("churn").version) == [1] and registry.names() == ["churn"]


def test_bundle_schema_and_reference_round_trip_exactly_and_validate_new_data(registry):
    case_study = load_case_study(seed=7)
    training = case_study.clean_sample(6_000, seed=0)
    register(registry, PASSING)  # on the 500-row sample
    registry.register(fitted_grid()["simple_model"], training, CRITERIA, PASSING, seed=3)
    bundle = registry.load("churn", version=2)
    expected = reference_sample(training.frame[[*training.features, training.target]], seed=3)
    assert len(bundle.reference) == 5_000
    pd.testing.assert_frame_equal(bundle.reference, expected, check_exact=True)
    assert bundle.schema.to_dict() == infer_schema(training.X).to_dict()
    assert bundle.criteria == CRITERIA and bundle.features == training.features
    assert bundle.validate(case_study.clean_sample(1_000, seed=1).frame).empty
    assert "unseen_category" in set(bundle.validate(training.frame.assign(plan="platinum")).kind)
    np.testing.assert_array_equal(bundle.predict_proba(training.frame), fitted_grid()["simple_model"].predict_proba(training.X))
    with pytest.raises(ValueError, match="lacks the model's feature column"):
        bundle.predict_proba(training.frame.drop(columns=["plan"]))


def test_frames_round_trip_exactly_through_json():
    frame = pd.DataFrame({
        "count": [1, 2, 3], "share": [0.1, np.nan, -np.inf], "nullable": pd.array([1, None, 3], dtype="Int64"),
        "text": ["a", None, ""], "flag": [True, False, True], "maybe": pd.array([True, None, False], dtype="boolean"),
        "level": pd.Categorical(["low", "high", None], categories=["low", "high"], ordered=True),
        "day": pd.to_datetime(["2024-01-01", None, "2024-03-01 12:30:00.123456"], format="ISO8601"),
        "utc": pd.to_datetime(["2024-01-01", "2024-02-01", None]).tz_localize("UTC"),
        "wait": pd.to_timedelta(["1 day", None, "3 hours"]), "small": np.float32([1 / 3, 2 / 3, 1])})
    pd.testing.assert_frame_equal(frame_from_json(json.loads(json.dumps(frame_to_json(frame)))), frame, check_exact=True)


def test_promotion_of_a_failing_model_is_refused_and_the_champion_unchanged(registry, project):
    register(registry, PASSING)
    register(registry, FAILING)
    registry.promote("churn", 1, reason="first accepted model")
    aliases_file = registry.folder / "churn" / "aliases.json"
    before = aliases_file.read_bytes()
    with pytest.raises(PromotionError, match=r"recall >= 0\.6 \(measured 0\.5\).*'champion' stays on v1"):
        registry.promote("churn", 2)
    assert aliases_file.read_bytes() == before and registry.champion("churn").version == 1
    assert [record.name for record in project.records("alias")] == ["churn:champion"]


def test_promotion_of_a_passing_model_is_recorded_and_the_history_kept(registry, project):
    register(registry, PASSING)
    register(registry, {"recall": 0.8, "precision": 0.5})
    first = registry.promote("churn", 1)
    second = registry.promote("churn", 2, reason="better recall")
    assert (first["previous"], second["previous"]) == (None, 1)
    assert second["not_measured"] == ["latency_p95_ms <= 50"]  # a system criterion, measured by the service later
    assert registry.champion("churn").version == 2 and registry.load("churn", alias="champion").version == 2
    assert list(registry.aliases("churn").version) == [1, 2]
    assert [record.data["version"] for record in project.records("alias", "churn:champion")] == [1, 2]
    assert registry.versions("churn").aliases.tolist() == ["", "champion"]


def test_an_unmeasured_model_criterion_blocks_promotion(registry):
    register(registry, {"recall": 0.9})
    with pytest.raises(PromotionError, match=r"precision >= 0\.3 \(not measured\)"):
        registry.promote("churn", 1)
    assert registry.champion("churn") is None


def test_unknown_versions_and_aliases_are_named(registry):
    with pytest.raises(UnknownVersionError, match="No model 'churn'"):
        registry.load("churn")
    register(registry, PASSING)
    with pytest.raises(UnknownVersionError, match="no version 4; its versions are 1"):
        registry.load("churn", version=4)
    with pytest.raises(UnknownVersionError, match="no alias 'champion'"):
        registry.load("churn", alias="champion")
    with pytest.raises(UnknownVersionError, match="no version 4"):
        registry.promote("churn", 4)


def snapshot(folder):
    return {path.relative_to(folder): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("tamper, message", [
    (lambda path: save_pipeline(fitted_grid()["minmax+forest"], path / "other.skops").replace(path / "model.skops"),
     "'model.skops' changed since it was registered"),
    (lambda path: (path / "schema.json").write_text((path / "schema.json").read_text().replace('"rows": 500', '"rows": 5')),
     "'schema.json' changed since it was registered"),
    (lambda path: (path / "reference.json").unlink(), "'reference.json' is missing"),
    (lambda path: (path / "card.json").write_text('{"format": "mlops-kit model card", '), "card.json' is not valid JSON"),
    (lambda path: (path / "card.json").write_text('{"format": "pickle"}'), "is not an mlops-kit model card"),
])
def test_a_tampered_or_damaged_version_is_refused_and_nothing_changes(registry, tamper, message):
    version = register(registry, PASSING)
    tamper(version.path)
    before = snapshot(registry.folder)
    with pytest.raises(RegistryError, match=message) as refused:
        registry.load("churn", version=1)
    assert "v1" in str(refused.value)
    with pytest.raises(RegistryError, match=message):
        registry.promote("churn", 1)
    assert snapshot(registry.folder) == before and registry.champion("churn") is None


def test_an_untrusted_model_swapped_in_with_a_forged_fingerprint_is_still_refused(registry, tmp_path):
    version = register(registry, PASSING)
    sample = training_sample()
    numbers = sample.X[["tenure_months", "support_calls"]]
    swapped = save_pipeline(make_pipeline(FunctionTransformer(add_ratio), LogisticRegression()).fit(numbers, sample.y),
                            tmp_path / "swapped.skops")
    swapped.replace(version.path / "model.skops")
    card = json.loads((version.path / "card.json").read_text())
    from mlops_kit.registry import _sha256
    card["files"]["model.skops"] = _sha256(version.path / "model.skops")
    (version.path / "card.json").write_text(json.dumps(card))
    with pytest.raises(UntrustedTypesError, match=r"test_registry\.add_ratio.*not loaded"):
        registry.load("churn")


def test_a_pipeline_with_an_untrusted_type_is_not_registered(registry):
    sample = training_sample()
    frame = sample.frame[["tenure_months", "support_calls", "churned"]]
    pipeline = make_pipeline(Clipper(), LogisticRegression()).fit(frame.drop(columns="churned"), frame.churned)
    with pytest.raises(UntrustedTypesError, match=r"test_registry\.Clipper.*not registered"):
        registry.register(pipeline, frame, CRITERIA, PASSING, target="churned", name="clipped")
    assert registry.names() == [] and not [path for path in (registry.folder / "clipped").iterdir() if path.name != ".lock"]
    registry.register(pipeline, frame, CRITERIA, PASSING, target="churned", name="clipped", trusted_extra=[Clipper])
    with pytest.raises(UntrustedTypesError):
        registry.load("clipped")
    assert registry.load("clipped", trusted_extra=[Clipper]).features == ["tenure_months", "support_calls"]


@pytest.mark.parametrize("change, error, message", [
    (dict(criteria="recall >= 0.6"), TypeError, "criteria must be a Criteria"),
    (dict(metrics={"recall": "high"}), TypeError, "'recall' must be a finite number"),
    (dict(metrics={"recall": float("nan")}), TypeError, "finite number"),
    (dict(name="../escape"), ValueError, "A model name is a word"),
    (dict(pipeline=simple_model(["plan"], ["tenure_months"])), ValueError, "Register a fitted pipeline"),
    (dict(training_data="data.csv"), TypeError, "DataFrame or a Dataset"),
    (dict(target="label"), ValueError, "The target 'label' is not a column"),
])
def test_bad_registrations_are_refused_before_anything_is_written(registry, change, error, message):
    sample = training_sample()
    arguments = dict(pipeline=fitted_grid()["simple_model"], training_data=sample.X, criteria=CRITERIA, metrics=PASSING)
    with pytest.raises(error, match=message):
        registry.register(**{**arguments, **change})
    assert registry.names() == []


CONCURRENT_REGISTRATIONS = textwrap.dedent('''
    import pathlib, sys, time
    from sklearn.dummy import DummyClassifier
    from mlops_kit.data import load_case_study
    from mlops_kit.lifecycle import Criteria
    from mlops_kit.registry import ModelRegistry
    folder, worker = pathlib.Path(sys.argv[1]), sys.argv[2]
    sample = load_case_study(seed=7).clean_sample(200, seed=int(worker))
    pipeline = DummyClassifier().fit(sample.X, sample.y)
    registry = ModelRegistry(folder / "models")
    (folder / f"ready-{worker}").touch()
    while not (folder / "go").exists(): time.sleep(0.01)  # start registering together
    for _ in range(6):
        print(registry.register(pipeline, sample, Criteria("recall >= 0.1"), {"recall": 0.5}, author=worker).version)
''')


def test_concurrent_registrations_from_two_processes_get_distinct_versions(tmp_path):
    workers = [subprocess.Popen([sys.executable, "-c", CONCURRENT_REGISTRATIONS, str(tmp_path), str(worker)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for worker in (1, 2)]
    while not all((tmp_path / f"ready-{worker}").exists() or workers[worker - 1].poll() is not None for worker in (1, 2)):
        time.sleep(0.01)
    (tmp_path / "go").touch()
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), [error for _, error in outputs]
    numbers = [int(line) for output, _ in outputs for line in output.split()]
    assert sorted(numbers) == list(range(1, 13))
    versions = ModelRegistry(tmp_path / "models").versions("churn")
    assert versions.version.tolist() == list(range(1, 13)) and sorted(versions.author.value_counts()) == [6, 6]
    assert not [path for path in (tmp_path / "models" / "churn").iterdir() if path.name.startswith(".staging")]


# ---- the pipelines the experiment grid itself builds ------------------------------------------------------------

def _space_corner(algorithm, corner: int) -> dict:
    "Parameters at one corner of `algorithm`'s space: every range at its low (0) or high (1) end, the first or last choice"
    from mlops_kit.experiments import Choice
    return {name: space.options[-corner] if isinstance(space, Choice) else (space.low, space.high)[corner]
            for name, space in algorithm.space.items()}


@pytest.mark.parametrize("numeric", ["standard", "minmax", "bins", "none"])
def test_every_pipeline_the_experiment_grid_builds_loads_with_the_allow_list(numeric, tmp_path):
    "Built by `mlops_kit.experiments` itself, so a new algorithm or variant in the grid is covered automatically"
    from mlops_kit.experiments import DataVariant, _pipeline, default_algorithms
    sample = training_sample()
    variant = DataVariant(f"{numeric}_variant", sample.numerical, sample.categorical, numeric)
    for algorithm in default_algorithms():
        for corner in (0, 1):
            pipeline = _pipeline(variant, algorithm, _space_corner(algorithm, corner), seed=0)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Bins whose width are too small", UserWarning)
                pipeline.fit(sample.X, sample.y)
            path = tmp_path / f"{algorithm.name}-{corner}.skops"
            save_pipeline(pipeline, path)
            assert untrusted_types(path) == [], f"{algorithm.name} on {numeric}: {untrusted_types(path)}"
            np.testing.assert_array_equal(load_pipeline(path).predict_proba(sample.X), pipeline.predict_proba(sample.X))
