"""Property-based tests of what a user feeds the serving module as text or values.

`PredictionLog(url)` on any text, and on files of any content: it opens a log or raises `ServingError` (the kit's
documented error), never anything else, and a file it refuses is left byte for byte as it was. `ServiceSettings` on any
values, and the client's conversion of records to JSON on any values: a result JSON can carry, or the kit's error.
"""
import contextlib, json, math, sqlite3
from pathlib import Path

import numpy as np
import pytest
import pandas as pd
from hypothesis import given, strategies as st

from properties import SETTINGS, files_in, inside_a_new_folder
from mlops_kit.errors import MlopsKitError
from mlops_kit.deployment import PredictionLog, ServiceSettings, ServingError
from mlops_kit.deployment.server import _json_value, _records_of

PLAIN = st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats() | st.text(max_size=12)


def opens_or_raises_serving_error(url):
    "Open the log at `url` and close it again; None if it was refused with a ServingError"
    try: log = PredictionLog(url)
    except ServingError as error:
        assert "secret" not in str(error), "a password must never reach a message"
        return None
    log.close()
    return log


# ---- the prediction log's URL -------------------------------------------------------------------------------------

PATH_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=20).filter(
    lambda text: not text.startswith("/") and ".." not in text)  # relative paths only: everything stays in the test's folder
LOG_URLS = st.one_of(
    PATH_TEXT.filter(lambda text: not text.startswith("postgres")),
    st.builds("sqlite:///{}".format, PATH_TEXT), st.builds("sqlite://{}".format, PATH_TEXT),
    st.builds("{}/{}".format, PATH_TEXT, st.sampled_from(["predictions.db", "", "."])),
    st.builds("postgresql://user:secret@127.0.0.1:{}/{}".format, st.integers(-5, 70_000).map(lambda port: 1 if 1 <= port <= 65535 else port)
              | st.text("0123456789:x", max_size=6), PATH_TEXT),  # port 1: refused at once, no waiting on a network
    st.builds("{}://user:secret@{}".format, st.sampled_from(["mysql", "http", "sqlite", "file"]), PATH_TEXT),
)


@SETTINGS
@given(url=LOG_URLS)
def test_a_prediction_log_on_any_url_opens_or_raises_serving_error(url):
    with inside_a_new_folder():
        log = opens_or_raises_serving_error(url)
        if log is not None: assert log.counts() == dict(requests=0, cases=0, labels=0)


@st.composite
def file_contents(draw):
    "Bytes a file may hold: a real log, cut or with bytes changed; another program's database; a SQLite header and noise; text"
    kind = draw(st.sampled_from(["log", "log-damaged", "other-database", "sqlite-header", "text", "noise", "empty"]))
    if kind == "log": return LOG_BYTES
    if kind == "log-damaged":
        position = draw(st.integers(0, len(LOG_BYTES) - 1))
        return LOG_BYTES[:position] + draw(st.binary(max_size=16)) + LOG_BYTES[position + draw(st.integers(0, 16)):]
    if kind == "other-database": return OTHER_DATABASE
    if kind == "sqlite-header": return b"SQLite format 3\x00" + draw(st.binary(max_size=300))
    if kind == "text": return draw(st.text(max_size=200)).encode()
    if kind == "noise": return draw(st.binary(min_size=1, max_size=300))
    return b""


def database_bytes(make) -> bytes:
    "The bytes of a SQLite file that `make(path)` fills"
    with inside_a_new_folder() as folder:
        make(folder / "made.db")
        return (folder / "made.db").read_bytes()


LOG_BYTES = database_bytes(lambda path: PredictionLog(path).close())
OTHER_DATABASE = database_bytes(lambda path: sqlite3.connect(path).execute("CREATE TABLE requests (id INTEGER)").connection.commit())


@SETTINGS
@given(content=file_contents(), form=st.sampled_from(["{}", "sqlite:///{}"]))
def test_a_prediction_log_on_a_file_of_any_content_opens_it_or_leaves_it_unchanged(content, form):
    with inside_a_new_folder() as folder:
        path = folder / "predictions.db"
        path.write_bytes(content)
        before = files_in(folder)
        try: log = opens_or_raises_serving_error(form.format(path))
        except sqlite3.DatabaseError: log = "damaged"  # see below
        if log is None: assert files_in(folder) == before, "a refused file must be left as it was"
        elif log != "damaged": assert content == b"" or content.startswith(b"SQLite format 3\x00"), "only a SQLite file is opened as a log"
        assert log != "damaged", "a damaged database must be a ServingError, not sqlite3's"


# ---- settings and what the client sends -----------------------------------------------------------------------------

@SETTINGS
@given(values=st.dictionaries(st.sampled_from(["max_batch_rows", "max_body_bytes", "max_group", "trusted_extra"]),
                              PLAIN | st.lists(PLAIN, max_size=2) | st.tuples(), max_size=4))
def test_service_settings_take_any_values_or_raise_serving_error(values):
    try: settings_made = ServiceSettings(**values)
    except ServingError: return
    for name in ["max_batch_rows", "max_body_bytes", "max_group"]:
        value = getattr(settings_made, name)
        assert isinstance(value, int) and not isinstance(value, bool) and value >= 1


VALUES = (PLAIN | st.floats(allow_nan=True, allow_infinity=True) | st.datetimes().map(pd.Timestamp)
          | st.integers(-100, 100).map(np.int64) | st.floats(allow_nan=True).map(np.float64) | st.just(pd.NaT) | st.just(pd.NA)
          | st.lists(PLAIN, max_size=2) | st.builds(object))


@SETTINGS
@given(value=VALUES)
def test_a_record_value_becomes_json_or_raises_the_kits_error(value):
    try: converted = _json_value(value, "row 0, column 'x'")
    except MlopsKitError as error:
        assert "row 0, column 'x'" in str(error)
        return
    json.dumps(converted, allow_nan=False)  # what the client sends is strict JSON
    assert converted is None or isinstance(converted, (bool, int, float, str))


@SETTINGS
@given(rows=st.lists(st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5) | st.none(), st.booleans()), max_size=6))
def test_a_frame_becomes_json_records_or_raises_the_kits_error(rows):
    frame = pd.DataFrame(rows, columns=["number", "word", "flag"])
    try: records = _records_of(frame)
    except MlopsKitError as error:
        assert any(not math.isfinite(number) and not math.isnan(number) for number, _, _ in rows) and "is inf" in str(error) or "is -inf" in str(error)
        return
    json.dumps(records, allow_nan=False)
    assert len(records) == len(frame)


# ---- the serve command's options ------------------------------------------------------------------------------------

@SETTINGS
@given(option=st.sampled_from(["--port", "--version", "--max-batch-rows", "--max-body-bytes"]),
       text=st.text(max_size=10) | st.integers(-10**6, 10**6).map(str) | st.floats(allow_nan=True, allow_infinity=True).map(str))
def test_a_serve_option_parses_in_range_or_is_refused_by_name(option, text):
    import io
    from mlops_kit.cli import build_parser
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors): args = build_parser().parse_args(["serve", f"{option}={text}"])
    except SystemExit as exit:
        assert exit.code == 2 and f"argument {option}: must be a whole number" in errors.getvalue()
        return
    value = getattr(args, option.lstrip("-").replace("-", "_"))
    assert isinstance(value, int) and value >= 1 and (option != "--port" or value <= 65535)


def damaged_database(folder: Path) -> Path:
    "A SQLite file whose table name is no longer UTF-8 (one byte damaged): what hypothesis once found"
    path = folder / "damaged.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE requests (id INTEGER)")
    connection.commit()
    connection.close()
    content = bytearray(path.read_bytes())
    content[content.find(b"requests", 100)] = 0x80
    path.write_bytes(bytes(content))
    return path


def test_a_database_with_a_damaged_table_name_is_refused_unchanged():
    from mlops_kit.development import make_storage
    with inside_a_new_folder() as folder:
        path = damaged_database(folder)
        before = files_in(folder)
        with pytest.raises(ServingError, match="cannot be read as a SQLite database"): PredictionLog(path)
        with pytest.raises(MlopsKitError, match="cannot be read as a SQLite database"): make_storage(f"sqlite:///{path}")
        assert files_in(folder) == before


# ---- the true labels /feedback takes, for every task ----------------------------------------------------------------

from fastapi import HTTPException  # noqa: E402
from pydantic import ValidationError  # noqa: E402
from mlops_kit.deployment.app import _checked_labels  # noqa: E402
from mlops_kit.deployment import checked_label as _plain_label, learner_models as _learner_models  # noqa: E402

MODELS = {"binary": ["benign", "malignant"], "multiclass": [0, 1, 2], "regression": None, "flags": [False, True]}
LABELS = (PLAIN | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(["malignant", "Malignant", 0, 1, 2, 1.0, True, "2"])
          | st.lists(PLAIN, max_size=2) | st.dictionaries(st.text(max_size=3), PLAIN, max_size=2))
LABEL_TEXTS = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "1.0", "true", "null", '"1"', "[]", "{}", "01", "1_0"])


@SETTINGS
@given(task=st.sampled_from(list(MODELS)), label=LABELS | LABEL_TEXTS.map(lambda text: ("raw", text)))
def test_a_feedback_label_is_one_of_the_tasks_or_refused(task, label):
    "The /feedback body on any label: a class of the model (the same value and type) or a regressor's finite number; else refused"
    from mlops_kit.data import infer_schema
    classes = MODELS[task]
    bodies = _learner_models("m", infer_schema(pd.DataFrame({"x": [1.0]})), 10, "regression" if classes is None else "binary", classes)
    text = label[1] if isinstance(label, tuple) else json.dumps(label)
    try: body = bodies["FeedbackRequest"].model_validate_json(f'{{"labels": [{{"id": "{"a" * 32}-0", "label": {text}}}]}}')
    except ValidationError: return
    try: checked = _checked_labels(body.labels, classes)
    except HTTPException as error:
        assert error.status_code == 422 and "is not one of the model's classes" in error.detail
        return
    value = checked[f"{'a' * 32}-0"]
    if classes is None: assert isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    else: assert any(value == known and type(value) is type(known) for known in classes)
    assert _plain_label(value, "x") == value  # what the log stores is what was checked


@SETTINGS
@given(label=LABELS | st.integers(-10, 10).map(np.int64) | st.floats(allow_nan=True).map(np.float64) | st.builds(object))
def test_a_label_the_python_client_sends_is_json_or_a_serving_error(label):
    try: value = _plain_label(label, "p-0")
    except ServingError as error:
        assert "'p-0'" in str(error)
        return
    json.dumps(value, allow_nan=False)
    assert isinstance(value, (bool, int, float, str))


# ---- Open Inference Protocol tensors: the whole-tensor check against the value-by-value one ----------------------------

from mlops_kit.deployment import ProtocolError, protocol_models  # noqa: E402
from mlops_kit.deployment.protocol import _DATATYPES, _tensor_values, _values_one_by_one  # noqa: E402
from mlops_kit.deployment.app import _frame_of  # noqa: E402

TENSOR_VALUES = (st.none() | st.booleans() | st.integers(-3, 300) | st.integers(-2**70, 2**70) | st.just(10**400)
                 | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=3) | st.dictionaries(st.text(max_size=2), st.none(), max_size=1))
TENSOR_DATA = st.lists(TENSOR_VALUES | st.lists(TENSOR_VALUES, min_size=1, max_size=2), max_size=6)  # nested evenly or not
# mostly values of one datatype, where the fast check has work to do
ONE_KIND = st.sampled_from([st.booleans(), st.integers(-3, 300), st.floats(-1e3, 1e3), st.text(max_size=3)]).flatmap(
    lambda values: st.lists(values | st.none(), max_size=6))


def outcome(decode, tensor):
    "What `decode(tensor)` gives: ('values', values) or the error's type and message"
    try: return "values", decode(tensor)
    except Exception as error: return type(error).__name__, str(error)


@SETTINGS
@given(datatype=st.sampled_from(sorted(_DATATYPES)), data=TENSOR_DATA | ONE_KIND | ONE_KIND.map(lambda values: [[value] for value in values]),
       extra=st.sampled_from([0, 0, 0, 1, -1]))
def test_the_whole_tensor_check_agrees_with_the_value_by_value_check(datatype, data, extra):
    "Any tensor: the fast path accepts exactly what the slow path accepts, with the same values, and refuses with the same message"
    rows = max(len(data) + extra, 0)
    tensor = protocol_models()["RequestInput"](name="x", shape=[rows, 1] if data and isinstance(data[0], list) else [rows], datatype=datatype, data=data)
    fast, slow = outcome(_tensor_values, tensor), outcome(lambda tensor: _values_one_by_one(tensor, rows), tensor)
    assert fast == slow
    assert fast[0] in ("values", "ProtocolError", "OverflowError")  # OverflowError: a number beyond a float's range, as before the fast check


COLUMN_VALUES = st.sampled_from([st.booleans(), st.integers(-10**6, 10**6), st.integers(-2**70, 2**70), st.floats(allow_nan=False, allow_infinity=False),
                                 st.text(max_size=3)]).flatmap(lambda values: st.lists(values | st.none(), min_size=1, max_size=5)
                                                              | st.lists(values, min_size=1, max_size=5))


@SETTINGS
@given(columns=st.lists(COLUMN_VALUES | st.lists(PLAIN, min_size=3, max_size=3), min_size=1, max_size=4))
def test_a_frame_built_column_by_column_is_the_frame_pandas_infers(columns):
    rows = min(len(values) for values in columns)
    named = {f"c{position}": values[:rows] for position, values in enumerate(columns)}
    pd.testing.assert_frame_equal(_frame_of(named), pd.DataFrame(named))


from mlops_kit.deployment.protocol import _column_at_once, _column_one_by_one  # noqa: E402

MATRIX_TEXTS = st.sampled_from(["0", "1", "12", " 7 ", "-3", "1.5", "1e3", "1e400", "nan", "inf", "1_0", "True", "false", "yes", "", "١٢"])
MATRIX_VALUES = MATRIX_TEXTS | st.text(max_size=3) | st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True, allow_infinity=True)


@SETTINGS
@given(kind=st.sampled_from(["boolean", "integer", "numeric", "categorical", "text", "datetime"]),
       values=st.lists(MATRIX_TEXTS, min_size=1, max_size=6) | st.lists(MATRIX_VALUES, min_size=1, max_size=6))
def test_a_matrix_column_converted_at_once_is_the_column_converted_value_by_value(kind, values):
    "A column of a 2-D tensor: converted at once, it is what the value-by-value pass gives; refused, the value-by-value pass decides"
    fast, slow = _column_at_once(list(values), kind), outcome(lambda values: _column_one_by_one(values, kind, "here"), list(values))
    if fast is not None: assert slow == ("values", fast) and [type(value) for value in fast] == [type(value) for value in slow[1]]
    else: assert slow[0] in ("values", "ProtocolError")
