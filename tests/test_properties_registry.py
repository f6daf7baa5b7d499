"""Property-based tests for what the registry reads back: `frame_from_json` dictionaries, model cards and alias
histories. Any input either loads or raises the kit's documented error (`MlopsKitError`; `RegistryError` for a
registry's files), never anything else, and a refused read changes no file."""
import hashlib, json, tempfile, warnings
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, strategies as st
from sklearn.dummy import DummyClassifier

from properties import SETTINGS, mutated
from mlops_kit.errors import MlopsKitError
from mlops_kit.lifecycle import Criteria
from mlops_kit.development import ModelRegistry, RegistryError, frame_from_json, frame_to_json, sealed_card


odd_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 600), st.integers(-10 ** 30, 10 ** 30),
                       st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                       st.sampled_from(["", "int64", "float64", "object", "category", "datetime64[ns]", "Int64", "boolean",
                                        "int8", "V8", "complex128", "timedelta64[ns]", "datetime64[ns, UTC]", "string",
                                        "2024-01-01", "plan", "churned", "sha256:0", "champion"]),
                       st.lists(st.integers(-2, 3), max_size=3), st.lists(st.text(max_size=3), max_size=3),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))




# ---- frame_from_json --------------------------------------------------------------------------------------------

TRICKY = pd.DataFrame({
    "count": [1, 2, 3], "share": [0.1, np.nan, -np.inf], "nullable": pd.array([1, None, 3], dtype="Int64"),
    "text": ["a", None, ""], "flag": [True, False, True], "maybe": pd.array([True, None, False], dtype="boolean"),
    "level": pd.Categorical(["low", "high", None], categories=["low", "high"], ordered=True),
    "day": pd.to_datetime(["2024-01-01", None, "2024-03-01 12:30:00.123456"], format="ISO8601"),
    "utc": pd.to_datetime(["2024-01-01", "2024-02-01", None]).tz_localize("UTC"),
    "wait": pd.to_timedelta(["1 day", None, "3 hours"]), "small": np.float32([1 / 3, 2 / 3, 1])})
FRAMES = [json.loads(json.dumps(frame_to_json(TRICKY))),
          json.loads(json.dumps(frame_to_json(TRICKY.iloc[:0]))),
          {"rows": 2, "columns": [{"name": "a", "dtype": "int64", "values": [1, 2]}]}]


@SETTINGS
@given(st.one_of(st.sampled_from(FRAMES).flatmap(lambda valid: mutated(valid, odd_values)),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=4),
                              lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=7), children, max_size=3),
                              max_leaves=12)))
def test_frame_from_json_reads_a_frame_or_raises_the_kits_error(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try: frame = frame_from_json(data)
        except MlopsKitError: return
    assert isinstance(frame, pd.DataFrame) and len(frame) == data["rows"]      # never padded nor cut
    assert list(frame.columns) == [spec["name"] for spec in data["columns"]]


# ---- model cards and alias histories ------------------------------------------------------------------------------

def registered()->tuple[ModelRegistry, Path]:
    "A registry holding one small promoted version, in a folder of its own"
    folder = Path(tempfile.mkdtemp(prefix="registry-properties-"))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"plan": rng.choice(["basic", "premium"], 60), "tenure": rng.integers(1, 60, 60)})
    frame["churned"] = (rng.random(60) < 0.3).astype(int)
    pipeline = DummyClassifier(strategy="prior").fit(frame[["plan", "tenure"]], frame.churned)
    registry = ModelRegistry(folder / "models")
    criteria = Criteria("recall >= 0.5", ["precision >= 0.2", "latency_p95_ms <= 50"])
    registry.register(pipeline, frame, criteria, {"recall": 0.7, "precision": 0.3}, name="churn", target="churned", seed=0, threshold=0.4)
    registry.promote("churn", 1)
    return registry, registry.folder / "churn" / "v1"


REGISTRY, VERSION = registered()
CARD = json.loads((VERSION / "card.json").read_text())
ALIASES = json.loads((VERSION.parent / "aliases.json").read_text())


def digests(folder:Path)->dict:
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.rglob("*")) if path.is_file()}


def reads_or_refuses(file:Path, content:bytes):
    "Write `content` to `file`, read the version through every entry point, then restore the file"
    original = file.read_bytes()
    file.write_bytes(content)
    try:
        before = digests(REGISTRY.folder)
        for read in (lambda: REGISTRY.load("churn", 1), lambda: REGISTRY.load("churn", alias="champion"),
                     lambda: REGISTRY.verify("churn", 1), lambda: REGISTRY.versions("churn"), lambda: REGISTRY.champion("churn"),
                     lambda: REGISTRY.aliases("churn"), lambda: repr(REGISTRY.version("churn", 1)), REGISTRY._repr_html_):
            try: read()
            except RegistryError: pass
        assert digests(REGISTRY.folder) == before
    finally: file.write_bytes(original)


cards = st.one_of(
    mutated(CARD, odd_values).map(lambda card: sealed_card(card) if isinstance(card, dict) else card),   # resealed: reaches the value checks
    mutated(CARD, odd_values, max_changes=1),                                                      # not resealed: the seal refuses
    mutated({key: value for key, value in CARD.items() if key != "card_sha256"} | {"format_version": 1}, odd_values),  # an old card
)


@SETTINGS
@given(cards)
def test_a_model_card_loads_or_raises_registry_error_and_no_file_changes(card):
    reads_or_refuses(VERSION / "card.json", json.dumps(card).encode())


@SETTINGS
@given(st.one_of(mutated(ALIASES, odd_values).map(lambda document: json.dumps(document).encode()), st.binary(max_size=60)))
def test_an_alias_history_reads_or_raises_registry_error_and_no_file_changes(content):
    reads_or_refuses(VERSION.parent / "aliases.json", content)


# ---- criteria on a metric of one's own, as criteria.json saves them ---------------------------------------------

def registered_with_a_metric_of_ones_own()->tuple[ModelRegistry, Path]:
    "A registry whose one version is judged on `mcc`, computed by scikit-learn's `matthews_corrcoef` (saved as a reference)"
    import sklearn.metrics
    from mlops_kit.lifecycle import Metric, MetricRegistry
    folder = Path(tempfile.mkdtemp())
    metrics = MetricRegistry.default()
    metrics.register(Metric("mcc", "higher", sklearn.metrics.matthews_corrcoef, lower=-1, upper=1, tasks=("binary", "multiclass")))
    frame = pd.DataFrame({"x": np.arange(40.0), "y": [0, 1] * 20})
    pipeline = DummyClassifier().fit(frame[["x"]], frame.y)
    registry = ModelRegistry(folder / "models")
    registry.register(pipeline, frame, Criteria("mcc >= 0.1", ["recall >= 0.5"], registry=metrics), {"mcc": 0.3, "recall": 0.6},
                      name="own", target="y")
    return registry, registry.folder / "own" / "v1"


OWN, OWN_VERSION = registered_with_a_metric_of_ones_own()
OWN_CRITERIA = json.loads((OWN_VERSION / "criteria.json").read_text())
references = st.sampled_from(["sklearn.metrics:matthews_corrcoef", "sklearn.metrics._classification:matthews_corrcoef", "os:getcwd",
                              "no_such_module:f", "sklearn.metrics:no_such_function", ":", "sklearn.metrics", "", "json:loads.x"])


@SETTINGS
@given(mutated(OWN_CRITERIA, odd_values | references))
def test_saved_criteria_on_a_metric_of_ones_own_load_or_raise_registry_error_and_no_file_changes(criteria):
    "criteria.json rewritten, its fingerprint renewed in a resealed card, as a careful forger would: it loads, or RegistryError"
    from mlops_kit.development.registry import _sha256
    criteria_file, card_file = OWN_VERSION / "criteria.json", OWN_VERSION / "card.json"
    originals = criteria_file.read_bytes(), card_file.read_bytes()
    try:
        criteria_file.write_text(json.dumps(criteria))
        card = json.loads(originals[1])
        card["files"]["criteria.json"] = _sha256(criteria_file)
        card_file.write_text(json.dumps(sealed_card({key: value for key, value in card.items() if key != "card_sha256"})))
        before = digests(OWN.folder)
        for read in (lambda: OWN.load("own", 1), lambda: OWN.verify("own", 1), lambda: OWN.promote("own", 1)):
            try: read()
            except RegistryError: pass
            except MlopsKitError as error: assert "Refused to make" in str(error)  # a promotion refused on its criteria
        changed = {path for path, digest in digests(OWN.folder).items() if before.get(path) != digest}
        assert changed <= {OWN_VERSION.parent / "aliases.json"}  # only a promotion writes, and only its alias history
    finally:
        criteria_file.write_bytes(originals[0])
        card_file.write_bytes(originals[1])
        (OWN_VERSION.parent / "aliases.json").unlink(missing_ok=True)
