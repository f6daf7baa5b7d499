"""Property-based tests of what a user (or a stored study) feeds the experiments module as text or dictionaries.

Any input either parses or raises the kit's documented error (`MlopsKitError`, of which `StorageConnectionError` and
`WrongTypeError` are kinds), never anything else; a file a storage refuses is left byte for byte as it was. The
strategies reach deep: mostly-valid inputs with one thing wrong, not only random text.
"""
import contextlib, copy, json, math

import numpy as np
import optuna
from hypothesis import assume, given, strategies as st

from properties import SETTINGS, files_in, inside_a_new_folder, mutated
from mlops_kit.errors import MlopsKitError
from mlops_kit.development import (Algorithm, CaseStudySample, Choice, DataVariant, FloatRange, IntRange, cv_folds, make_storage,
                                   default_algorithms)
from mlops_kit.development.grid import _read_table, _rebuilt_dataset
from mlops_kit.development.search_space import _rebuilt, _saved, _space_from_dict

PLAIN = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
ANYTHING = st.recursive(PLAIN, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


# ---- storage URLs ---------------------------------------------------------------------------------------------

PATH_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=20).filter(
    lambda text: not text.startswith("/") and ".." not in text)  # relative paths only: everything stays in the test's folder
STORAGE_URLS = st.one_of(
    PATH_TEXT.filter(lambda text: not text.startswith(("postgres", "sqlite"))),  # random text: a network URL is built below
    st.builds("journal:{}".format, PATH_TEXT),
    st.builds("{}{}".format, PATH_TEXT, st.sampled_from([".journal", ".log", "/.journal", "/x.log"])),
    st.builds("sqlite:///{}".format, PATH_TEXT),
    st.builds("sqlite:{}".format, PATH_TEXT),
    st.builds("postgresql://user:secret@127.0.0.1:{}/{}".format, st.integers(-5, 70_000).map(lambda port: 1 if 1 <= port <= 65535 else port)
              | st.text("0123456789:x", max_size=6), PATH_TEXT),  # port 1: refused at once, no waiting on a network
    st.builds("{}://{}".format, st.sampled_from(["mysql", "http", "journal", "file", "postgres+x"]), PATH_TEXT),
)


@SETTINGS
@given(url=STORAGE_URLS)
def test_make_storage_on_any_url_opens_a_storage_or_raises_the_kits_error(url):
    with inside_a_new_folder() as folder:
        try: storage = make_storage(url)
        except MlopsKitError as error: assert "secret" not in str(error)
        else: assert type(storage).__name__ in {"JournalStorage", "RDBStorage"}
        assert all(path.stat().st_size == 0 or path.suffix == ".lock" or "sqlite" in url for path in folder.rglob("*") if path.is_file())


def a_journal() -> list[bytes]:
    "The lines of a small real Optuna journal: a study, one finished trial"
    with inside_a_new_folder() as folder:
        storage = make_storage(f"journal:{folder}/real.journal")
        study = optuna.create_study(study_name="real", storage=storage)
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
        return (folder / "real.journal").read_bytes().splitlines(keepends=True)


JOURNAL_LINES = a_journal()


def an_optuna_database() -> bytes:
    "The bytes of a small real Optuna SQLite storage"
    with inside_a_new_folder() as folder:
        make_storage(f"sqlite:///{folder}/real.db").engine.dispose()
        return (folder / "real.db").read_bytes()


OPTUNA_DATABASE = an_optuna_database()


@st.composite
def file_contents(draw):
    "Bytes a file may hold: a real journal with one line changed, dropped, cut or added; JSON lines; SQLite-like bytes; noise"
    lines = list(JOURNAL_LINES)
    kind = draw(st.sampled_from(["journal", "journal-edited", "json-lines", "sqlite-header", "optuna-database", "noise", "empty"]))
    if kind == "journal": return b"".join(lines)
    if kind == "optuna-database":
        position = draw(st.integers(0, len(OPTUNA_DATABASE)))
        return draw(st.sampled_from([OPTUNA_DATABASE, OPTUNA_DATABASE[:position], OPTUNA_DATABASE[:position] + b"\xff" * 8]))
    if kind == "journal-edited":
        position = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["drop", "cut", "replace", "insert", "no-newline"]))
        if edit == "drop": del lines[position]
        elif edit == "cut": lines[position] = lines[position][:draw(st.integers(0, len(lines[position]) - 1))]
        elif edit == "replace": lines[position] = json.dumps(draw(ANYTHING)).encode() + b"\n"
        elif edit == "insert": lines.insert(position, draw(st.binary(max_size=30)) + b"\n")
        else: lines[-1] = lines[-1].rstrip(b"\n")
        return b"".join(lines)
    if kind == "json-lines": return b"".join(json.dumps(draw(ANYTHING)).encode() + b"\n" for _ in range(draw(st.integers(1, 3))))
    if kind == "sqlite-header": return b"SQLite format 3\x00" + draw(st.binary(max_size=200))
    if kind == "noise": return draw(st.binary(min_size=1, max_size=200))
    return b""


@SETTINGS
@given(content=file_contents(), form=st.sampled_from(["journal:{}", "{}", "sqlite:///{}"]), name=st.sampled_from(["studies.journal", "app.log", "studies.db"]))
def test_make_storage_on_a_file_of_any_content_opens_it_or_leaves_it_unchanged(content, form, name):
    assume(form != "{}" or not name.endswith(".db"))  # a bare .db path is no storage URL
    with inside_a_new_folder() as folder:
        path = folder / name
        path.write_bytes(content)
        before = files_in(folder)
        try: storage = make_storage(form.format(path))
        except MlopsKitError:
            assert files_in(folder) == before, "a refused file must be left as it was"
            return
        if form.startswith("sqlite") and content: assert content.startswith(b"SQLite format 3\x00"), "only a SQLite file is opened as one"
        if not form.startswith("sqlite"): assert path.read_bytes() == content  # opening a journal writes nothing by itself
        optuna.create_study(study_name="added", storage=storage)  # an accepted file takes a study and reads back whole
        assert optuna.load_study(study_name="added", storage=make_storage(form.format(path))).study_name == "added"
        if not form.startswith("sqlite"): assert path.read_bytes().startswith(content), "a journal is only ever appended to"


# ---- the dictionaries a study is rebuilt from -------------------------------------------------------------------

SPACES = [IntRange(2, 16).to_dict(), FloatRange(0.001, 10.0, log=True).to_dict(), Choice(None, "balanced", 3, 0.5, True).to_dict()]
def own_estimators() -> list:
    "Estimators a user may hand the grid as instances: a pipeline, a column transformer, a function of numpy's"
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder
    return [Pipeline([("reduce", PCA(n_components=3)), ("model", Ridge(alpha=0.5))]), FunctionTransformer(np.log1p),
            ColumnTransformer([("one_hot", OneHotEncoder(), ["plan"])], remainder="drop")]


OWN = own_estimators()
ALGORITHMS = [algorithm.to_dict() for algorithm in [*default_algorithms(), *default_algorithms("regression")]] + [
    Algorithm("reduced_ridge", OWN[0], {"model__alpha": FloatRange(0.01, 10.0, log=True)}, {"reduce__n_components": 2}).to_dict()]
VARIANTS = [DataVariant("scaled", ["tenure_months"], ["plan"]).to_dict(), DataVariant("binned", ["usage_hours"], (), "bins", 4).to_dict(),
            DataVariant("reduced", ["usage_hours", "tenure_months"], step=OWN[0][0]).to_dict()]
SAVED = [_saved(estimator) for estimator in OWN]


@st.composite
def one_thing_wrong(draw, valid: dict):
    "`valid` with one key dropped, added, or given any value, or one value inside a nested dict or list changed"
    data = copy.deepcopy(valid)
    edit = draw(st.sampled_from(["drop", "add", "change", "deep", "none"]))
    keys = sorted(data)
    if edit == "drop" and keys: data.pop(draw(st.sampled_from(keys)))
    elif edit == "add": data[draw(st.text(max_size=8))] = draw(ANYTHING)
    elif edit == "change" and keys: data[draw(st.sampled_from(keys))] = draw(ANYTHING)
    elif edit == "deep":
        nested = [key for key in keys if isinstance(data[key], (dict, list)) and data[key]]
        if nested:
            inner = data[draw(st.sampled_from(nested))]
            index = draw(st.sampled_from(sorted(inner) if isinstance(inner, dict) else list(range(len(inner)))))
            inner[index] = draw(ANYTHING | st.sampled_from(SPACES))
    return data


def parses_or_raises_the_kits_error(parse, data):
    try: return parse(data)
    except MlopsKitError: return None


@SETTINGS
@given(data=st.sampled_from(SPACES).flatmap(one_thing_wrong) | ANYTHING)
def test_a_space_dict_parses_or_raises_the_kits_error(data):
    space = parses_or_raises_the_kits_error(_space_from_dict, data)
    if space is not None: assert _space_from_dict(space.to_dict()) == space


@SETTINGS
@given(data=st.sampled_from(ALGORITHMS).flatmap(one_thing_wrong) | ANYTHING)
def test_an_algorithm_dict_parses_and_checks_or_raises_the_kits_error(data):
    algorithm = parses_or_raises_the_kits_error(Algorithm.from_dict, data)
    if algorithm is None: return
    assert Algorithm.from_dict(algorithm.to_dict()) == algorithm
    parses_or_raises_the_kits_error(lambda item: item.check(), algorithm)  # the estimator and every value a trial may use


@SETTINGS
@given(data=st.sampled_from(SAVED).flatmap(lambda saved: mutated(saved, ANYTHING | st.sampled_from(SAVED).map(copy.deepcopy))) | ANYTHING)
def test_a_saved_estimator_rebuilds_or_raises_the_kits_error(data):
    "The instance a study saves (class paths and parameters) comes back as an equal estimator, or is refused: never anything else"
    estimator = parses_or_raises_the_kits_error(_rebuilt, data)
    if estimator is None or not hasattr(estimator, "get_params"): return
    assert _saved(estimator) == _saved(_rebuilt(_saved(estimator)))


@SETTINGS
@given(data=st.sampled_from(VARIANTS).flatmap(one_thing_wrong) | ANYTHING)
def test_a_data_variant_dict_parses_or_raises_the_kits_error(data):
    variant = parses_or_raises_the_kits_error(DataVariant.from_dict, data)
    if variant is not None: assert DataVariant.from_dict(variant.to_dict()) == variant


@SETTINGS
@given(data=st.just(CaseStudySample(n=500).to_dict()).flatmap(one_thing_wrong)
       | st.builds(lambda inner: {"case_study_sample": inner}, st.just(dict(n=500, seed=42, sample_seed=0)).flatmap(one_thing_wrong)) | ANYTHING)
def test_a_case_study_sample_dict_parses_or_raises_the_kits_error(data):
    sample = parses_or_raises_the_kits_error(CaseStudySample.from_dict, data)
    if sample is not None: assert CaseStudySample.from_dict(sample.to_dict()) == sample


# ---- folds: every fold the grid is given can be trained and scored ------------------------------------------------

@SETTINGS
@given(labels=st.lists(st.integers(0, 1), min_size=0, max_size=40), cv=st.integers(-1, 8), seed=st.integers(-5, 2**33),
       periods=st.none() | st.integers(1, 8))
def test_cv_folds_gives_folds_that_hold_both_classes_or_raises_the_kits_error(labels, cv, seed, periods):
    y = np.array(labels)
    times = None if periods is None else np.sort(np.arange(len(y)) % periods)
    folds = parses_or_raises_the_kits_error(lambda _: cv_folds(cv, y, times, seed=seed), None)
    if folds is None: return
    for train, test in folds:
        assert set(y[train]) == {0, 1} and set(y[test]) == {0, 1}, "a fold with one class would be scored wrongly"


@SETTINGS
@given(labels=st.lists(st.sampled_from(["red", "green", "blue"]), min_size=0, max_size=40), cv=st.integers(-1, 6),
       periods=st.none() | st.integers(1, 8))
def test_cv_folds_of_a_multiclass_target_hold_every_class_or_raise_the_kits_error(labels, cv, periods):
    y = np.array(labels, dtype=object)
    times = None if periods is None else np.sort(np.arange(len(y)) % periods)
    folds = parses_or_raises_the_kits_error(lambda _: cv_folds(cv, y, times, task="multiclass"), None)
    if folds is None: return
    for train, test in folds:
        assert set(y[train]) == set(y) and set(y[test]) == set(y), "a fold without a class would be trained or scored wrongly"


@SETTINGS
@given(values=st.lists(st.floats(-1e6, 1e6), min_size=0, max_size=30), cv=st.integers(-1, 6), periods=st.none() | st.integers(1, 8))
def test_cv_folds_of_a_regression_target_cover_every_row_or_raise_the_kits_error(values, cv, periods):
    y = np.array(values)
    times = None if periods is None else np.sort(np.arange(len(y)) % periods)
    folds = parses_or_raises_the_kits_error(lambda _: cv_folds(cv, y, times, task="regression"), None)
    if folds is None: return
    assert all(len(train) and len(test) for train, test in folds)
    if times is None: assert sorted(np.concatenate([test for _, test in folds]).tolist()) == list(range(len(y)))


# ---- a worker's data file -------------------------------------------------------------------------------------------

def a_dataset():
    "A small Dataset of the user's own: dates, numbers with gaps, text, a text target"
    import pandas as pd
    from mlops_kit.data import Dataset
    frame = pd.DataFrame({"month": pd.date_range("2024-01-01", periods=4, freq="MS").repeat(3), "size": np.arange(12) / 7,
                          "count": np.arange(12), "colour": ["red", "green", None] * 4, "kind": ["a", "b", "c"] * 4})
    frame.loc[5, "size"] = np.nan
    return Dataset(frame, target="kind", features=["size", "count", "colour"], time_column="month")


DATASET = a_dataset()
SPEC = __import__("mlops_kit.development.grid", fromlist=["_dataset_source"])._dataset_source(DATASET)["dataset"]
CSV_LINES = DATASET.frame.to_csv(index=False).encode().splitlines(keepends=True)


@st.composite
def csv_contents(draw):
    "The dataset's CSV with a line dropped, cut, duplicated or replaced, a cell changed, or random bytes"
    lines = list(CSV_LINES)
    edit = draw(st.sampled_from(["none", "drop", "cut", "duplicate", "replace", "cell", "noise"]))
    position = draw(st.integers(0, len(lines) - 1))
    if edit == "drop": del lines[position]
    elif edit == "cut": lines[position] = lines[position][:draw(st.integers(0, len(lines[position])))]
    elif edit == "duplicate": lines.insert(position, lines[position])
    elif edit == "replace": lines[position] = draw(st.binary(max_size=40)) + b"\n"
    elif edit == "cell":
        cells = lines[position].rstrip(b"\n").split(b",")
        cells[draw(st.integers(0, len(cells) - 1))] = draw(st.text(max_size=8)).replace(",", "").replace("\n", "").encode()
        lines[position] = b",".join(cells) + b"\n"
    elif edit == "noise": return draw(st.binary(max_size=200))
    return b"".join(lines)


@SETTINGS
@given(content=csv_contents())
def test_a_workers_data_file_of_any_content_rebuilds_the_dataset_or_raises_the_kits_error(content):
    with inside_a_new_folder() as folder:
        path = folder / "data.csv"
        path.write_bytes(content)
        before = files_in(folder)
        try: dataset = _rebuilt_dataset(_read_table(path, SPEC["columns"]), SPEC)
        except MlopsKitError: dataset = None
        assert files_in(folder) == before, "reading the data changes nothing"
        if dataset is not None:
            assert list(dataset.frame.dtypes.astype(str)) == list(SPEC["columns"].values()) and dataset.task == SPEC["task"]
        if content == b"".join(CSV_LINES): assert dataset is not None and dataset.frame.equals(DATASET.frame)


# ---- the experiment command's options ------------------------------------------------------------------------------

OPTION_TEXT = st.text(max_size=10) | st.integers(-10**6, 10**6).map(str) | st.floats(allow_nan=True, allow_infinity=True).map(str)


@SETTINGS
@given(option=st.sampled_from(["--trials", "--heartbeat-interval", "--grace-period", "--n-jobs", "--older-than"]), text=OPTION_TEXT)
def test_an_experiment_option_parses_in_range_or_is_refused_by_name(option, text):
    from mlops_kit.cli import build_parser
    action = "cleanup" if option == "--older-than" else "worker"
    required = ["--trials", "3"] if action == "worker" and option != "--trials" else []
    errors = __import__("io").StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            args = build_parser().parse_args(["experiment", action, "--storage", "journal:x.journal", "--study", "s", *required, f"{option}={text}"])
    except SystemExit as exit:
        assert exit.code == 2 and f"argument {option}: must be " in errors.getvalue() and "Traceback" not in errors.getvalue()
        return
    value = getattr(args, option.lstrip("-").replace("-", "_"))
    assert (0 <= value < math.inf) if option == "--older-than" else (isinstance(value, int) and value >= 1)
