"""The model microservice, tested against a real server: uvicorn on a free loopback port, in a background thread.

Covers the Open Inference Protocol (v2) routes and shapes, an unmodified standard client of the protocol
(`tritonclient` in JSON mode), readiness while the model loads, `/predict` and `/feedback` with the prediction log
(SQLite and PostgreSQL), bad input (always a 4xx naming the problem, and nothing logged), Prometheus `/metrics`,
the security defaults (loopback, untrusted or tampered model artifacts refused at startup), the registry's decision
threshold and the errors of the public entry points.

Most tests share one running server per test module (`server`); tests that need their own model or settings
start their own.
"""
import contextlib, json, math, os, re, subprocess, sys, threading, time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from conftest import MLOPS_KIT_COMMAND, free_port, serve_command, triton_float_inputs, wait_until_ready
from mlops_kit import __version__
from mlops_kit.design import simple_model
from mlops_kit.data import load_case_study
from mlops_kit.errors import MlopsKitError, WrongTypeError
from mlops_kit.lifecycle import Criteria
from mlops_kit.development import ModelRegistry, UnknownVersionError
from mlops_kit.deployment import (BackgroundServer, PredictionLog, RequestRecord, ServiceClient, ServiceCallError, ServiceSettings,
                               ServingError, create_app, serve)

CRITERIA = Criteria("recall >= 0.6", ["precision >= 0.2"])
PASSING = {"recall": 0.7, "precision": 0.3}
THRESHOLD = 0.2
MAX_BATCH_ROWS = 5  # the shared server's limit, small so that a batch over it is cheap to send
MAX_BODY_BYTES = 20_000
EXPECTED_DATATYPES = {"region": "BYTES", "plan": "BYTES", "contract_type": "BYTES", "payment_method": "BYTES",
                      "paperless_billing": "BOOL", "tenure_months": "INT64", "monthly_charges": "FP64", "support_calls": "INT64",
                      "usage_hours": "FP64", "inactive_days": "INT64", "customer_age": "INT64"}


# ---- the data, the model and the shared server ------------------------------------------------------------------

@pytest.fixture(scope="module")
def case_study():
    return load_case_study(seed=42).clean_sample()


@pytest.fixture(scope="module")
def training(case_study):
    "The first half-year of the case study: what the model learns from"
    return case_study.between(end="2024-07-01")


@pytest.fixture(scope="module")
def new_customers(case_study):
    "Feature rows the model has not seen (the second half-year), to send to the service"
    return case_study.between(start="2024-07-01").X.reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted_model(training):
    "The course's simple pipeline, fitted once and registered in several registries"
    return simple_model(training.categorical, training.numerical).fit(training.X, training.y)


def register_champion(folder, pipeline, training, **fields):
    "A registry in `folder` whose champion 'churn' is `pipeline`"
    registry = ModelRegistry(folder)
    version = registry.register(pipeline, training, CRITERIA, PASSING, name="churn", **fields)
    registry.promote("churn", version.version)
    return registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory, fitted_model, training):
    "A registry with one model, 'churn' v1, promoted to champion, flagging churn at probability >= 0.2"
    return register_champion(tmp_path_factory.mktemp("models"), fitted_model, training, threshold=THRESHOLD)


@pytest.fixture(scope="module")
def bundle(registry):
    "The registered model, loaded directly: what the service's answers must agree with"
    return registry.load("churn")


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    return tmp_path_factory.mktemp("log") / "predictions.db"


@pytest.fixture(scope="module")
def server(registry, log_path):
    "One running server shared by the tests of this module, with small request limits"
    settings = ServiceSettings(max_batch_rows=MAX_BATCH_ROWS, max_body_bytes=MAX_BODY_BYTES)
    background = BackgroundServer(create_app(registry, name="churn", log=log_path, settings=settings))
    background.start()
    yield background
    background.stop()


@pytest.fixture(scope="module")
def http(server):
    "A plain HTTP client of the shared server"
    with httpx.Client(base_url=server.url, timeout=30) as client: yield client


@pytest.fixture(scope="module")
def log_reader(server, log_path):
    "A second handle on the shared server's prediction log, as an analyst would open it"
    with PredictionLog(log_path) as reader: yield reader


def records_of(frame: pd.DataFrame) -> list:
    "JSON-ready records (plain Python values) of a DataFrame"
    return frame.astype(object).to_dict(orient="records")


def column_tensors(frame: pd.DataFrame, two_dimensional: bool = False) -> list:
    "One Open Inference Protocol tensor per column, of shape [rows] or [rows, 1]"
    rows = len(frame)
    return [dict(name=name, datatype=EXPECTED_DATATYPES[name], shape=[rows, 1] if two_dimensional else [rows],
                 data=[[value] for value in values] if two_dimensional else values)
            for name, values in frame.astype(object).to_dict(orient="list").items()]


def text_matrix(frame: pd.DataFrame) -> dict:
    "The whole frame as one 2-D BYTES tensor, every value as text (what generic clients send)"
    return dict(name="features", datatype="BYTES", shape=list(frame.shape),
                data=[[str(value) for value in row] for row in frame.astype(object).itertuples(index=False)])


def outputs_by_name(answer: dict) -> dict:
    return {output["name"]: output for output in answer["outputs"]}


def error_of(response: httpx.Response) -> str:
    "The error message of an error answer: every error body is {'error': message}"
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


# ---- 1. the Open Inference Protocol --------------------------------------------------------------------------

def test_server_metadata_and_health(http):
    assert http.get("/v2").json() == {"name": "mlops-kit", "version": __version__, "extensions": []}
    live, ready = http.get("/v2/health/live"), http.get("/v2/health/ready")
    assert (live.status_code, live.json()) == (200, {"live": True})
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


@pytest.mark.parametrize("path", ["/v2/models/churn", "/v2/models/churn/versions/1"])
def test_model_metadata_describes_inputs_outputs_and_parameters(http, path):
    metadata = http.get(path).json()
    assert (metadata["name"], metadata["versions"], metadata["platform"]) == ("churn", ["1"], "scikit-learn")
    assert {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]} == EXPECTED_DATATYPES
    assert all(tensor["shape"] == [-1] for tensor in metadata["inputs"])
    outputs = {tensor["name"]: tensor for tensor in metadata["outputs"]}
    assert list(outputs) == ["predict", "predict_proba", "prediction_id"]
    assert outputs["predict"]["datatype"] == "INT64"  # the target is 0/1
    assert (outputs["predict_proba"]["datatype"], outputs["predict_proba"]["shape"]) == ("FP64", [-1, 2])  # one column per class
    assert outputs["predict_proba"]["parameters"] == {"classes": [0, 1]}
    assert outputs["prediction_id"]["datatype"] == "BYTES"
    assert metadata["parameters"]["max_batch_rows"] == MAX_BATCH_ROWS
    assert metadata["parameters"]["threshold"] == THRESHOLD
    assert {key: metadata["parameters"][key] for key in ("task", "classes", "positive_label")} == dict(task="binary", classes=[0, 1], positive_label=1)


@pytest.mark.parametrize("path", ["/v2/models/churn/ready", "/v2/models/churn/versions/1/ready"])
def test_model_readiness(http, path):
    response = http.get(path)
    assert (response.status_code, response.json()) == (200, {"name": "churn", "ready": True})


def assert_matches_pipeline(outputs: dict, frame: pd.DataFrame, bundle):
    "The protocol's outputs for `frame` agree with the registered pipeline on the same rows"
    rows, expected = len(frame), bundle.predict_proba(frame)
    probabilities = outputs["predict_proba"]
    assert (probabilities["shape"], probabilities["datatype"]) == ([rows, 2], "FP64")
    served = np.asarray(probabilities["data"]).reshape(rows, 2)
    np.testing.assert_allclose(served.sum(axis=1), 1.0)
    np.testing.assert_allclose(served, expected)
    assert outputs["predict"]["shape"] == [rows]
    assert outputs["predict"]["data"] == (served[:, 1] >= THRESHOLD).astype(int).tolist()
    assert outputs["predict"]["data"] == bundle.predict(frame).tolist()
    ids = outputs["prediction_id"]
    assert (ids["shape"], ids["datatype"], len(set(ids["data"]))) == ([rows], "BYTES", rows)


@pytest.mark.parametrize("two_dimensional", [False, True], ids=["shape [n]", "shape [n, 1]"])
def test_infer_with_one_tensor_per_feature(http, new_customers, bundle, two_dimensional):
    frame = new_customers.head(4)
    body = {"id": "request-42", "inputs": column_tensors(frame, two_dimensional)}
    answer = http.post("/v2/models/churn/infer", json=body).json()
    assert (answer["model_name"], answer["model_version"], answer["id"]) == ("churn", "1", "request-42")
    assert_matches_pipeline(outputs_by_name(answer), frame, bundle)


def test_infer_with_one_bytes_matrix_on_the_versioned_route(http, new_customers, bundle):
    frame = new_customers.iloc[10:15]
    answer = http.post("/v2/models/churn/versions/1/infer", json={"id": "matrix", "inputs": [text_matrix(frame)]}).json()
    assert answer["id"] == "matrix"
    assert_matches_pipeline(outputs_by_name(answer), frame, bundle)


def test_infer_returns_only_the_outputs_asked_for(http, new_customers, bundle):
    frame = new_customers.head(3)
    body = {"inputs": column_tensors(frame), "outputs": [{"name": "predict_proba"}, {"name": "prediction_id"}]}
    answer = http.post("/v2/models/churn/infer", json=body).json()
    assert [output["name"] for output in answer["outputs"]] == ["predict_proba", "prediction_id"]
    assert answer["id"] is None  # no id sent, none echoed
    np.testing.assert_allclose(np.reshape(answer["outputs"][0]["data"], (3, 2)), bundle.predict_proba(frame))


# ---- 2. an unmodified standard client: tritonclient over HTTP, JSON tensors -----------------------------------

TRITON_NUMPY_TYPES = {"BYTES": object, "BOOL": bool, "INT64": np.int64, "FP64": np.float64}


@pytest.fixture(scope="module")
def triton(server):
    import tritonclient.http as triton_http
    client = triton_http.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield client
    client.close()


def triton_outputs(names=("predict", "predict_proba", "prediction_id"), binary_data=False):
    import tritonclient.http as triton_http
    return [triton_http.InferRequestedOutput(name, binary_data=binary_data) for name in names]


def triton_column_inputs(frame: pd.DataFrame, binary_data=False) -> list:
    "One tritonclient input per feature, from numpy arrays"
    import tritonclient.http as triton_http
    inputs = []
    for name, datatype in EXPECTED_DATATYPES.items():
        values = frame[name].to_numpy().astype(TRITON_NUMPY_TYPES[datatype])
        tensor = triton_http.InferInput(name, [len(frame)], datatype)
        tensor.set_data_from_numpy(values, binary_data=binary_data)
        inputs.append(tensor)
    return inputs


def assert_triton_result_matches_pipeline(result, frame, bundle):
    probabilities = result.as_numpy("predict_proba")
    np.testing.assert_allclose(probabilities, bundle.predict_proba(frame))
    np.testing.assert_array_equal(result.as_numpy("predict"), bundle.predict(frame))
    assert len(set(result.as_numpy("prediction_id").tolist())) == len(frame)


def test_tritonclient_health_and_metadata(triton):
    assert triton.is_server_live() and triton.is_server_ready() and triton.is_model_ready("churn")
    metadata = triton.get_model_metadata("churn")
    assert {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]} == EXPECTED_DATATYPES
    assert triton.get_server_metadata()["name"] == "mlops-kit"


def test_tritonclient_infers_with_one_tensor_per_feature(triton, new_customers, bundle):
    frame = new_customers.head(5)
    result = triton.infer("churn", triton_column_inputs(frame), outputs=triton_outputs(), request_id="triton-1")
    assert result.get_response()["id"] == "triton-1"
    assert_triton_result_matches_pipeline(result, frame, bundle)


def test_tritonclient_infers_with_a_bytes_matrix(triton, new_customers, bundle):
    import tritonclient.http as triton_http
    frame = new_customers.iloc[20:24]
    matrix = triton_http.InferInput("features", list(frame.shape), "BYTES")
    matrix.set_data_from_numpy(frame.astype(str).to_numpy(dtype=object), binary_data=False)
    result = triton.infer("churn", [matrix], outputs=triton_outputs(), request_id="triton-2")
    assert result.get_response()["id"] == "triton-2"
    assert_triton_result_matches_pipeline(result, frame, bundle)


@pytest.mark.parametrize("binary_inputs, binary_outputs", [(False, True), (True, False)],
                         ids=["binary outputs", "binary inputs"])
def test_tritonclient_binary_tensors_are_refused_with_a_clear_message(triton, new_customers, log_reader,
                                                                       binary_inputs, binary_outputs):
    from tritonclient.utils import InferenceServerException
    before = log_reader.counts()
    with pytest.raises(InferenceServerException, match="binary tensor extension is not supported") as raised:
        triton.infer("churn", triton_column_inputs(new_customers.head(2), binary_data=binary_inputs),
                     outputs=triton_outputs(binary_data=binary_outputs))
    assert raised.value.status() == "400"
    assert log_reader.counts() == before


# ---- 3. readiness while the model loads --------------------------------------------------------------------------

@pytest.fixture
def slowly_loading_registry(tmp_path, training):
    """A registry whose champion takes seconds to load: hundreds of fully grown extremely randomized trees.

    Extra trees grow big trees fast, so the model is cheap to train but slow to deserialize and check."""
    pipeline = simple_model(training.categorical, training.numerical)
    pipeline.steps[-1] = ("trees", ExtraTreesClassifier(n_estimators=200, random_state=0, n_jobs=2))
    pipeline.fit(training.X, training.y)
    return register_champion(tmp_path / "models", pipeline, training)


def test_ready_only_once_the_model_is_loaded(slowly_loading_registry, tmp_path, new_customers):
    background = BackgroundServer(create_app(slowly_loading_registry, name="churn", log=tmp_path / "log.db"))
    client = background.start(wait_ready=False)
    try:
        with httpx.Client(base_url=background.url, timeout=30) as http:
            assert http.get("/v2/health/live").status_code == 200
            for path in ["/v2/health/ready", "/v2/models/churn/ready"]:
                response = http.get(path)
                assert response.status_code == 503, f"{path} answered before the model loaded"
                assert "loading" in error_of(response)
            predict = http.post("/predict", json={"records": records_of(new_customers.head(2))})
            assert predict.status_code == 503 and "loading" in error_of(predict)
            assert predict.headers["Retry-After"] == "1"
            assert not client.ready()
            client.wait_until_ready(timeout=120)
            assert http.get("/v2/health/ready").status_code == 200
            assert http.get("/v2/models/churn/ready").json() == {"name": "churn", "ready": True}
            assert http.post("/predict", json={"records": records_of(new_customers.head(2))}).status_code == 200
            metrics = scrape(http)
    finally:
        background.stop()
    assert metrics[("mlops_kit_requests_total", (("endpoint", "/predict"), ("outcome", "not_ready")))] == 1
    assert metrics[("mlops_kit_requests_total", (("endpoint", "/predict"), ("outcome", "ok")))] == 1
    assert metrics[("mlops_kit_requests_total", (("endpoint", "/v2/health/live"), ("outcome", "ok")))] == 1


# ---- 4. /predict, /feedback and the prediction log ----------------------------------------------------------

def test_predict_returns_ids_probabilities_and_the_threshold(http, new_customers, bundle):
    frame = new_customers.iloc[30:34]
    answer = http.post("/predict", json={"records": records_of(frame)}).json()
    assert (answer["model_name"], answer["model_version"], answer["threshold"]) == ("churn", 1, THRESHOLD)
    assert answer["ids"] == [f"{answer['request_id']}-{row}" for row in range(4)]
    np.testing.assert_allclose(answer["probabilities"], bundle.predict_proba(frame)[:, 1])
    assert answer["predictions"] == (np.asarray(answer["probabilities"]) >= THRESHOLD).astype(int).tolist()


def test_the_log_keeps_each_case_and_the_feedback_for_it(http, new_customers, log_reader):
    frame = new_customers.iloc[40:43].reset_index(drop=True)
    answer = http.post("/predict", json={"records": records_of(frame)}).json()
    first, second, third = answer["ids"]
    feedback = http.post("/feedback", json={"labels": [{"id": first, "label": 1}, {"id": second, "label": 0}]})
    assert feedback.json() == {"received": 2}
    cases = log_reader.window(last=3)
    assert cases["id"].tolist() == answer["ids"]
    assert (cases["model_name"] == "churn").all() and (cases["model_version"] == 1).all()
    assert (cases["endpoint"] == "predict").all()
    assert cases["prediction"].tolist() == answer["predictions"]
    np.testing.assert_allclose([row[1] for row in cases["probabilities"]], answer["probabilities"])
    pd.testing.assert_frame_equal(cases[list(frame.columns)], frame, check_dtype=False)
    assert cases["label"].tolist()[:2] == [1, 0] and pd.isna(cases["label"].iloc[2])


def test_infer_predictions_are_logged_and_take_feedback(http, new_customers, log_reader):
    body = {"id": "client-7", "inputs": column_tensors(new_customers.head(2)), "outputs": [{"name": "prediction_id"}]}
    ids = http.post("/v2/models/churn/infer", json=body).json()["outputs"][0]["data"]
    assert http.post("/feedback", json={"labels": [{"id": ids[1], "label": 1}]}).json() == {"received": 1}
    cases = log_reader.window(last=2)
    assert cases["id"].tolist() == ids and (cases["endpoint"] == "infer").all()
    assert (cases["client_request_id"] == "client-7").all()
    assert pd.isna(cases["label"].iloc[0]) and cases["label"].iloc[1] == 1


def test_the_python_client_splits_big_frames_into_batches(server, new_customers, bundle):
    frame = new_customers.iloc[100:112]  # more rows than the server takes per request
    with ServiceClient(server.url, "churn") as client: served = client.predict(frame)
    assert served.index.equals(frame.index) and served["id"].is_unique
    np.testing.assert_allclose(served["probability"], bundle.predict_proba(frame)[:, 1])
    assert (served["model_version"] == 1).all()


def test_feedback_can_correct_a_label(http, new_customers, log_reader):
    prediction_id = http.post("/predict", json={"records": records_of(new_customers.head(1))}).json()["ids"][0]
    for label in [1, 0]: http.post("/feedback", json={"labels": [{"id": prediction_id, "label": label}]})
    assert log_reader.window(last=1)["label"].tolist() == [0]


def test_feedback_for_an_unknown_id_is_404_and_saves_nothing(http, new_customers, log_reader):
    answer = http.post("/predict", json={"records": records_of(new_customers.head(1))}).json()
    known, unknown, past_the_rows = answer["ids"][0], "0" * 32 + "-0", f"{answer['request_id']}-7"
    before = log_reader.counts()
    for missing in [unknown, past_the_rows]:
        response = http.post("/feedback", json={"labels": [{"id": known, "label": 1}, {"id": missing, "label": 0}]})
        assert response.status_code == 404
        assert missing in error_of(response) and "Nothing was saved" in error_of(response)
    assert log_reader.counts() == before
    assert pd.isna(log_reader.window(last=1)["label"].iloc[0])


@pytest.mark.parametrize("labels, words", [
    ([{"id": "not-an-id", "label": 1}], ["'not-an-id'", "not a prediction id"]),
    ([{"id": "{known}", "label": 2}], ["2", "not one of the model's classes"]),
    ([{"id": "{known}", "label": "1"}], ["'1'", "not one of the model's classes"]),
    ([{"id": "{known}", "label": 1}, {"id": "{known}", "label": 0}], ["appears twice"]),
    ([], ["empty"]),
], ids=["malformed id", "label not a class", "label as text", "id repeated", "no labels"])
def test_bad_feedback_is_422_and_saves_nothing(http, new_customers, log_reader, labels, words):
    known = http.post("/predict", json={"records": records_of(new_customers.head(1))}).json()["ids"][0]
    before = log_reader.counts()
    response = http.post("/feedback", json={"labels": [{**item, "id": item["id"].format(known=known)} for item in labels]})
    assert response.status_code == 422
    assert all(word in error_of(response) for word in words), error_of(response)
    assert log_reader.counts() == before


def test_window_by_count_and_by_time(http, new_customers, log_reader):
    since = pd.Timestamp.now(tz="UTC")
    earlier = http.post("/predict", json={"records": records_of(new_customers.head(3))}).json()["ids"]
    later = http.post("/predict", json={"records": records_of(new_customers.iloc[3:5])}).json()["ids"]
    until = pd.Timestamp.now(tz="UTC")
    assert log_reader.window(last=4)["id"].tolist() == earlier[1:] + later
    assert log_reader.window(last=2)["id"].tolist() == later
    assert log_reader.window(since=since, until=until)["id"].tolist() == earlier + later
    assert log_reader.window(until=since)["id"].isin(earlier + later).sum() == 0
    with pytest.raises(ServingError, match="last must be a positive number"): log_reader.window(last=0)
    with pytest.raises(ServingError, match="since must be a time"): log_reader.window(since="yesterday-ish")


# ---- 5. bad input: a 4xx naming the problem, and nothing logged ----------------------------------------------

def one_record(new_customers, **changes) -> dict:
    "The first new customer as a record, with `changes` (a value of None there removes the field)"
    record = {**records_of(new_customers.head(1))[0], **changes}
    return {name: value for name, value in record.items() if value is not None}


def raw_json_with(record: dict, field: str, literal: str) -> str:
    "A /predict body as JSON text whose `field` holds `literal` verbatim (e.g. NaN, which json.dumps would not write)"
    text = json.dumps({"records": [{**record, field: "PLACEHOLDER"}]})
    return text.replace('"PLACEHOLDER"', literal)


BAD_PREDICT_REQUESTS = {  # name -> (how to build the body from a good record, expected status, words in the message)
    "misspelt column": (lambda good: {"records": [{**{k: v for k, v in good.items() if k != "monthly_charges"},
                                                  "monthly_charge": 61.5}]},
                        422, ["monthly_charge", "not a feature", "Did you mean 'monthly_charges'"]),
    "text for a number": (lambda good: {"records": [{**good, "monthly_charges": "cheap"}]}, 422, ["monthly_charges"]),
    "number given as text": (lambda good: {"records": [{**good, "tenure_months": "12"}]}, 422, ["tenure_months"]),
    "missing field": (lambda good: {"records": [{k: v for k, v in good.items() if k != "plan"}]}, 422,
                      ["records[0]", "plan", "send every feature"]),
    "number for a category": (lambda good: {"records": [{**good, "region": 3}]}, 422, ["region"]),
    "empty batch": (lambda good: {"records": []}, 422, ["records", "empty"]),
    "batch over the limit": (lambda good: {"records": [good] * (MAX_BATCH_ROWS + 1)}, 422, ["limit of 5", "smaller batches"]),
    "no records key": (lambda good: {"rows": [good]}, 422, ["lacks records", "rows is not a feature"]),
    "NaN": (lambda good: raw_json_with(good, "monthly_charges", "NaN"), 422, ["monthly_charges", "NaN"]),
    "Infinity": (lambda good: raw_json_with(good, "usage_hours", "Infinity"), 422, ["usage_hours", "infinity"]),
    "malformed JSON": (lambda good: '{"records": [', 400, ["Malformed JSON"]),
    "body over the size limit": (lambda good: {"records": [good], "padding": "x" * MAX_BODY_BYTES}, 413, ["limit", "20,000 bytes"]),
}


@pytest.mark.parametrize("case", BAD_PREDICT_REQUESTS)
def test_bad_predict_requests_are_refused_with_the_reason(http, new_customers, log_reader, case):
    build, status, words = BAD_PREDICT_REQUESTS[case]
    body, before = build(one_record(new_customers)), log_reader.counts()
    if isinstance(body, str): response = http.post("/predict", content=body, headers={"content-type": "application/json"})
    else: response = http.post("/predict", json=body)
    assert response.status_code == status, response.text
    message = error_of(response)
    assert all(word in message for word in words), message
    assert log_reader.counts() == before


def tensors_with(new_customers, feature: str, **changes) -> list:
    "The column tensors of two new customers, with `changes` made to the tensor of `feature`"
    return [{**tensor, **changes} if tensor["name"] == feature else tensor for tensor in column_tensors(new_customers.head(2))]


BAD_INFER_REQUESTS = {  # name -> (path, body from the new customers, status, words in the message)
    "shape does not hold the data": ("/v2/models/churn/infer", lambda rows: {"inputs": tensors_with(rows, "tenure_months", shape=[3])},
                                     400, ["tenure_months", "[3]", "holds 3 values"]),
    "feature tensor not a column": ("/v2/models/churn/infer", lambda rows: {"inputs": tensors_with(
        rows, "tenure_months", shape=[1, 2], data=[[1, 2]])}, 400, ["tenure_months", "[rows] or [rows, 1]"]),
    "datatype not the feature's": ("/v2/models/churn/infer", lambda rows: {"inputs": tensors_with(
        rows, "region", datatype="FP64", data=[1.0, 2.0])}, 400, ["region", "FP64", "BYTES"]),
    "unknown datatype": ("/v2/models/churn/infer", lambda rows: {"inputs": tensors_with(rows, "tenure_months", datatype="INTEGER")},
                         400, ["tenure_months", "unknown datatype", "INTEGER"]),
    "value not of the datatype": ("/v2/models/churn/infer", lambda rows: {"inputs": tensors_with(
        rows, "tenure_months", data=[12, "twelve"])}, 400, ["tenure_months", "INT64", "twelve"]),
    "text in a BOOL tensor": ("/v2/models/churn/infer", lambda rows: {"inputs": tensors_with(
        rows, "paperless_billing", data=["yes", True])}, 400, ["paperless_billing", "BOOL", "yes"]),
    "different row counts": ("/v2/models/churn/infer", lambda rows: {"inputs": tensors_with(
        rows, "tenure_months", shape=[1], data=[12])}, 400, ["different numbers of rows"]),
    "misspelt input": ("/v2/models/churn/infer", lambda rows: {"inputs": tensors_with(rows, "tenure_months", name="tenure")},
                       400, ["'tenure'", "Did you mean 'tenure_months'"]),
    "unknown output": ("/v2/models/churn/infer", lambda rows: {"inputs": column_tensors(rows.head(2)),
                                                                "outputs": [{"name": "probability"}]},
                       400, ["'probability'", "predict_proba"]),
    "matrix of the wrong width": ("/v2/models/churn/infer", lambda rows: {"inputs": [{**text_matrix(rows.head(2).iloc[:, :3])}]},
                                  400, ["features", "[rows, 11]", "[2, 3]"]),
    "matrix value not a number": ("/v2/models/churn/infer", lambda rows: {"inputs": [text_matrix(
        rows.head(1).assign(monthly_charges="lots"))]}, 400, ["monthly_charges", "'lots'"]),
    "rows over the limit": ("/v2/models/churn/infer", lambda rows: {"inputs": column_tensors(rows.head(MAX_BATCH_ROWS + 1))},
                            400, ["6 rows", "limit of 5"]),
    "no inputs": ("/v2/models/churn/infer", lambda rows: {"inputs": []}, 400, ["inputs"]),
    "unknown model": ("/v2/models/churm/infer", lambda rows: {"inputs": column_tensors(rows.head(2))}, 404, ["'churm'", "'churn'"]),
    "unknown version": ("/v2/models/churn/versions/2/infer", lambda rows: {"inputs": column_tensors(rows.head(2))},
                        404, ["version '2'", "serves version 1"]),
}


@pytest.mark.parametrize("case", BAD_INFER_REQUESTS)
def test_bad_infer_requests_are_refused_with_the_reason(http, new_customers, log_reader, case):
    path, build, status, words = BAD_INFER_REQUESTS[case]
    before = log_reader.counts()
    response = http.post(path, json=build(new_customers))
    assert response.status_code == status, response.text
    message = error_of(response)
    assert all(word in message for word in words), message
    assert log_reader.counts() == before


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_infer_refuses_nan_and_infinity(http, new_customers, log_reader, literal):
    body = json.dumps({"inputs": tensors_with(new_customers, "monthly_charges", data=["PLACEHOLDER", 50.0])})
    before = log_reader.counts()
    response = http.post("/v2/models/churn/infer", content=body.replace('"PLACEHOLDER"', literal),
                         headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "monthly_charges" in error_of(response) and "NaN and infinity are not allowed" in error_of(response)
    assert log_reader.counts() == before


def test_infer_malformed_json_is_400(http):
    response = http.post("/v2/models/churn/infer", content=b"{inputs:", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "Malformed JSON" in error_of(response)


@pytest.mark.parametrize("path, words", [("/v2/models/churm", ["'churm'"]), ("/v2/models/churn/versions/9", ["'9'"]),
                                         ("/v2/models/churm/ready", ["'churm'"]), ("/v2/models/churn/versions/9/ready", ["'9'"])])
def test_unknown_model_or_version_is_404(http, path, words):
    response = http.get(path)
    assert response.status_code == 404 and all(word in error_of(response) for word in words)


# The messages main gave before tensors were checked a whole tensor at a time (issue 16), recorded from its code: the fast
# check must leave every one of them as it was, word for word.
EXACT_TENSOR_MESSAGES = {  # name -> (feature, changes to its tensor, a JSON literal for "PLACEHOLDER" or None, the message)
    'UINT8 holding a negative number': ('tenure_months', {'datatype': 'UINT8', 'data': [12, -1]}, None,
        "input 'tenure_months' is UINT8 but holds '-1'"),
    'UINT64 holding a negative number': ('monthly_charges', {'datatype': 'UINT64', 'data': [-3, 5]}, None,
        "input 'monthly_charges' is UINT64 but holds '-3'"),
    'INT8 holding a decimal': ('tenure_months', {'datatype': 'INT8', 'data': [12, 1.5]}, None,
        "input 'tenure_months' is INT8 but holds '1.5'"),
    'INT16 holding a boolean': ('tenure_months', {'datatype': 'INT16', 'data': [True, 12]}, None,
        "input 'tenure_months' is INT16 but holds 'True'"),
    'INT32 holding a number as text': ('tenure_months', {'datatype': 'INT32', 'data': ['12', 3]}, None,
        "input 'tenure_months' is INT32 but holds '12'"),
    'INT64 holding null, then text': ('tenure_months', {'datatype': 'INT64', 'data': [None, 'x']}, None,
        "input 'tenure_months' is INT64 but holds 'x'"),
    'UINT32 holding a decimal': ('monthly_charges', {'datatype': 'UINT32', 'data': [3, 2.5]}, None,
        "input 'monthly_charges' is UINT32 but holds '2.5'"),
    'FP16 holding text': ('monthly_charges', {'datatype': 'FP16', 'data': [50.0, 'cheap']}, None,
        "input 'monthly_charges' is FP16 but holds 'cheap'"),
    'FP32 holding a boolean': ('monthly_charges', {'datatype': 'FP32', 'data': [False, 1.5]}, None,
        "input 'monthly_charges' is FP32 but holds 'False'"),
    'FP64 holding an object': ('monthly_charges', {'datatype': 'FP64', 'data': [{'a': 1}, 2.0]}, None,
        "input 'monthly_charges': data holds an object; tensors hold numbers, booleans or text"),
    'FP64 holding NaN': ('monthly_charges', {'datatype': 'FP64', 'data': ['PLACEHOLDER', 50.0]}, 'NaN',
        "input 'monthly_charges' is FP64 but holds 'nan' (NaN and infinity are not allowed; send null for a missing value)"),
    'FP32 holding Infinity': ('monthly_charges', {'datatype': 'FP32', 'data': [50.0, 'PLACEHOLDER']}, 'Infinity',
        "input 'monthly_charges' is FP32 but holds 'inf' (NaN and infinity are not allowed; send null for a missing value)"),
    'FP16 holding -Infinity': ('monthly_charges', {'datatype': 'FP16', 'data': ['PLACEHOLDER', 1]}, '-Infinity',
        "input 'monthly_charges' is FP16 but holds '-inf' (NaN and infinity are not allowed; send null for a missing value)"),
    'INT64 holding NaN': ('tenure_months', {'datatype': 'INT64', 'data': [1, 'PLACEHOLDER']}, 'NaN',
        "input 'tenure_months' is INT64 but holds 'nan' (NaN and infinity are not allowed; send null for a missing value)"),
    'BOOL holding a number': ('paperless_billing', {'datatype': 'BOOL', 'data': [1, True]}, None,
        "input 'paperless_billing' is BOOL but holds '1'"),
    'BOOL holding text': ('paperless_billing', {'datatype': 'BOOL', 'data': ['true', False]}, None,
        "input 'paperless_billing' is BOOL but holds 'true'"),
    'BYTES holding a number': ('region', {'datatype': 'BYTES', 'data': [3, 'east']}, None,
        "input 'region' is BYTES but holds '3'"),
    'BYTES holding a boolean': ('region', {'datatype': 'BYTES', 'data': ['east', True]}, None,
        "input 'region' is BYTES but holds 'True'"),
    '[rows, 1] holding text': ('tenure_months', {'shape': [2, 1], 'data': [[12], ['x']]}, None,
        "input 'tenure_months' is INT64 but holds 'x'"),
    '[rows, 1] nested unevenly': ('tenure_months', {'shape': [2, 1], 'data': [[12], [1, 2]]}, None,
        "input 'tenure_months' has shape [2, 1], which holds 2 values, but its data has 3"),
    '[rows, 1] holding an object': ('tenure_months', {'shape': [2, 1], 'data': [[12], [{'b': 2}]]}, None,
        "input 'tenure_months': data holds an object; tensors hold numbers, booleans or text"),
    'shape [2, 2]': ('tenure_months', {'shape': [2, 2], 'data': [[1, 2], [3, 4]]}, None,
        "input 'tenure_months' has shape [2, 2]: one feature's tensor has shape [rows] or [rows, 1]"),
    'three dimensions': ('tenure_months', {'shape': [2, 1, 1], 'data': [[[1]], [[2]]]}, None,
        "input 'tenure_months' has shape [2, 1, 1]: one feature's tensor has shape [rows] or [rows, 1]"),
    'negative size': ('tenure_months', {'shape': [-2], 'data': [1, 2]}, None,
        "input 'tenure_months' has a negative size in its shape [-2]"),
    'shape [3] for 2 values': ('tenure_months', {'shape': [3]}, None,
        "input 'tenure_months' has shape [3], which holds 3 values, but its data has 2"),
    'shape [1] for 2 values': ('monthly_charges', {'shape': [1]}, None,
        "input 'monthly_charges' has shape [1], which holds 1 values, but its data has 2"),
    'FP64 for an integer feature': ('tenure_months', {'datatype': 'FP64', 'data': [1.0, 2.0]}, None,
        "input 'tenure_months' is FP64, but the feature is integer: send INT64"),
    'INT64 for a category': ('region', {'datatype': 'INT64', 'data': [1, 2]}, None,
        "input 'region' is INT64, but the feature is categorical: send BYTES"),
    'BYTES for a boolean feature': ('paperless_billing', {'datatype': 'BYTES', 'data': ['true', 'false']}, None,
        "input 'paperless_billing' is BYTES, but the feature is boolean: send BOOL"),
    'BOOL for a number': ('monthly_charges', {'datatype': 'BOOL', 'data': [True, False]}, None,
        "input 'monthly_charges' is BOOL, but the feature is numeric: send FP64"),
    'unknown datatype FP8': ('monthly_charges', {'datatype': 'FP8'}, None,
        "input 'monthly_charges' has the unknown datatype 'FP8'; use one of ['BOOL', 'BYTES', 'FP16', 'FP32', 'FP64', 'INT16', 'INT32', 'INT64', 'INT8', 'UINT16', 'UINT32', 'UINT64', 'UINT8']"),
    'lower-case datatype': ('monthly_charges', {'datatype': 'fp64'}, None,
        "input 'monthly_charges' has the unknown datatype 'fp64'; use one of ['BOOL', 'BYTES', 'FP16', 'FP32', 'FP64', 'INT16', 'INT32', 'INT64', 'INT8', 'UINT16', 'UINT32', 'UINT64', 'UINT8']"),
}
EXACT_MATRIX_MESSAGES = {  # name -> (row, feature, the value in a BYTES matrix of two rows, the message)
    'matrix: text for a number': (1, 'monthly_charges', 'lots', "input 'features', column 6 (monthly_charges): 'lots' is not a finite numeric value"),
    'matrix: NaN as text': (0, 'usage_hours', 'nan', "input 'features', column 8 (usage_hours): 'nan' is not a finite numeric value"),
    "matrix: a boolean as 'yes'": (0, 'paperless_billing', 'yes', "input 'features', column 4 (paperless_billing): 'yes' is not a finite boolean value"),
    'matrix: a decimal for a whole number': (1, 'tenure_months', '1.5', "input 'features', column 5 (tenure_months): '1.5' is not a finite integer value"),
    'matrix: a JSON number among text': (0, 'monthly_charges', 61.5, "input 'features' is BYTES but holds '61.5'"),
}


@pytest.mark.parametrize("case", EXACT_TENSOR_MESSAGES)
def test_a_bad_tensor_gets_the_same_message_as_before_the_fast_check(http, new_customers, log_reader, case):
    feature, changes, literal, message = EXACT_TENSOR_MESSAGES[case]
    body, before = json.dumps({"inputs": tensors_with(new_customers, feature, **changes)}), log_reader.counts()
    if literal is not None: body = body.replace('"PLACEHOLDER"', literal)
    response = http.post("/v2/models/churn/infer", content=body, headers={"content-type": "application/json"})
    assert (response.status_code, error_of(response)) == (400, message)
    assert log_reader.counts() == before


@pytest.mark.parametrize("case", EXACT_MATRIX_MESSAGES)
def test_a_bad_matrix_gets_the_same_message_as_before(http, new_customers, log_reader, case):
    row, feature, value, message = EXACT_MATRIX_MESSAGES[case]
    matrix, before = text_matrix(new_customers.head(2)), log_reader.counts()
    matrix["data"][row][list(new_customers.columns).index(feature)] = value
    response = http.post("/v2/models/churn/infer", json={"inputs": [matrix]})
    assert (response.status_code, error_of(response)) == (400, message)
    assert log_reader.counts() == before


OUT_OF_RANGE = {  # name -> (feature, datatype, the value as JSON, the message)
    "INT8 over 127": ("tenure_months", "INT8", "300", "input 'tenure_months' is INT8 but holds '300', outside its range (-128 to 127): send a wider datatype"),
    "INT16 under its least": ("tenure_months", "INT16", "-40000", "input 'tenure_months' is INT16 but holds '-40000', outside its range (-32,768 to 32,767)"),
    "UINT8 over 255": ("support_calls", "UINT8", "256", "input 'support_calls' is UINT8 but holds '256', outside its range (0 to 255)"),
    "INT64 over 2**63 - 1": ("tenure_months", "INT64", str(2**63), f"input 'tenure_months' is INT64 but holds '{2**63}', outside its range"),
    "UINT64 over 2**64 - 1": ("tenure_months", "UINT64", str(2**64), f"input 'tenure_months' is UINT64 but holds '{2**64}', outside its range"),
    "FP16 over 65504": ("monthly_charges", "FP16", "70000.5", "input 'monthly_charges' is FP16 but holds '70000.5', outside its range (-65,504 to 65,504)"),
    "FP32 over 3.4e38": ("monthly_charges", "FP32", "1e39", "input 'monthly_charges' is FP32 but holds '1e+39', outside its range (-3.4028e+38 to 3.4028e+38)"),
    "FP64 given an integer of 400 digits": ("monthly_charges", "FP64", "1" + "0" * 400, "input 'monthly_charges' is FP64 but holds '1000000000000000000000000000000000000000', outside its range"),
}


@pytest.mark.parametrize("case", OUT_OF_RANGE)
def test_a_value_outside_its_datatypes_range_is_a_400_that_says_so(http, new_customers, log_reader, case):
    "A value the named datatype cannot hold is refused (an integer too large for a float was a 500 before)"
    feature, datatype, literal, message = OUT_OF_RANGE[case]
    body, before = json.dumps({"inputs": tensors_with(new_customers, feature, datatype=datatype, data=[1, "PLACEHOLDER"])}), log_reader.counts()
    response = http.post("/v2/models/churn/infer", content=body.replace('"PLACEHOLDER"', literal), headers={"content-type": "application/json"})
    assert response.status_code == 400 and error_of(response).startswith(message), (response.status_code, response.text)
    assert log_reader.counts() == before


def test_data_that_mixes_lists_and_values_at_one_level_is_a_400(http, new_customers, log_reader):
    "[12, [7]] for two rows was flattened and accepted: now refused, as the tensor's shape cannot say what it means"
    before = log_reader.counts()
    response = http.post("/v2/models/churn/infer", json={"inputs": tensors_with(new_customers, "tenure_months", data=[12, [7]])})
    assert response.status_code == 400 and "input 'tenure_months': its data mixes lists and values at one level" in error_of(response)
    assert log_reader.counts() == before


NUMBER_DATATYPES = ["UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"]


@pytest.mark.parametrize("datatype", NUMBER_DATATYPES)
def test_infer_takes_every_datatype_a_feature_allows_and_logs_the_values(http, new_customers, bundle, log_reader, datatype):
    "Numbers in every datatype, text and booleans, nulls among them and one tensor of shape [rows, 1]: the pipeline's answer on the same rows"
    frame = new_customers.iloc[60:65].reset_index(drop=True)  # MAX_BATCH_ROWS
    if not datatype.startswith("FP"): frame["monthly_charges"] = frame["monthly_charges"].round().astype(int)
    frame["region"], frame["usage_hours"] = frame["region"].where(frame.index != 1), frame["usage_hours"].where(frame.index != 2)  # missing
    tensors = {tensor["name"]: tensor for tensor in column_tensors(frame)}
    tensors["monthly_charges"]["datatype"] = datatype
    for name in ["region", "usage_hours"]: tensors[name]["data"] = [None if pd.isna(value) else value for value in frame[name]]
    if datatype.startswith("INT"): tensors["tenure_months"].update(datatype=datatype, shape=[len(frame), 1],
                                                                    data=[[value] for value in frame["tenure_months"].tolist()])
    answer = http.post("/v2/models/churn/infer", json={"inputs": list(tensors.values())})
    assert answer.status_code == 200, answer.text
    assert_matches_pipeline(outputs_by_name(answer.json()), frame, bundle)
    logged = log_reader.window(last=len(frame))[list(frame.columns)]
    pd.testing.assert_frame_equal(logged, frame, check_dtype=False)


def test_infer_answer_fits_the_documented_response_model(http, new_customers):
    "/infer writes its JSON itself (not validated again by FastAPI): it must still be what the OpenAPI schema promises"
    from mlops_kit.deployment import protocol_models
    response = http.post("/v2/models/churn/infer", json={"id": "r-1", "inputs": column_tensors(new_customers.head(3))})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    answer = protocol_models()["InferenceResponse"].model_validate_json(response.content)
    assert answer.model_dump(exclude_unset=True) == response.json() and answer.model_version == "1"


# ---- 6. Prometheus metrics -------------------------------------------------------------------------------------

def scrape(http) -> dict:
    "The server's metrics as {(sample name, sorted labels): value}, parsed by prometheus_client"
    response = http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def test_metrics_count_requests_predictions_and_commits(http, new_customers):
    before = scrape(http)
    answer = http.post("/predict", json={"records": records_of(new_customers.iloc[50:55])}).json()
    assert http.post("/predict", json={"records": []}).status_code == 422
    after = scrape(http)

    def change(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert change("mlops_kit_requests_total", endpoint="/predict", outcome="ok") == 1
    assert change("mlops_kit_requests_total", endpoint="/predict", outcome="client_error") == 1
    assert change("mlops_kit_request_duration_seconds_count", endpoint="/predict") == 2
    assert change("mlops_kit_request_duration_seconds_bucket", endpoint="/predict", le="+Inf") == 2
    assert change("mlops_kit_request_duration_seconds_sum", endpoint="/predict") > 0
    for label, count in Counter(answer["predictions"]).items():
        assert change("mlops_kit_predictions_total", label=str(label)) == count
    assert change("mlops_kit_predicted_probability_count") == 5
    assert change("mlops_kit_predicted_probability_sum") == pytest.approx(sum(answer["probabilities"]))
    assert change("mlops_kit_log_committed_requests") == 1 and change("mlops_kit_log_commits") == 1
    assert after[("mlops_kit_model_info", (("name", "churn"), ("version", "1")))] == 1
    assert after[("mlops_kit_model_ready", ())] == 1


def test_metrics_count_feedback_labels(http, new_customers):
    prediction_id = http.post("/predict", json={"records": records_of(new_customers.head(1))}).json()["ids"][0]
    before = scrape(http)
    http.post("/feedback", json={"labels": [{"id": prediction_id, "label": 1}]})
    after = scrape(http)
    key = ("mlops_kit_feedback_labels_total", (("label", "1"),))
    assert after[key] - before.get(key, 0) == 1


# ---- 7. security --------------------------------------------------------------------------------------------

def test_the_service_listens_on_loopback_by_default(server, http):
    import inspect
    assert server.url.startswith("http://127.0.0.1:")
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(BackgroundServer).parameters["host"].default == "127.0.0.1"
    assert http.get("/v2/health/live").status_code == 200


def select_numbers(frame):
    "A custom step: the untrusted function a model artifact may smuggle in"
    return frame[["tenure_months", "support_calls"]]


@pytest.fixture
def registry_with_custom_code(tmp_path, training):
    "A registry whose champion calls `select_numbers`, trusted on purpose when registering"
    pipeline = make_pipeline(FunctionTransformer(select_numbers), LogisticRegression()).fit(training.X, training.y)
    return register_champion(tmp_path / "models", pipeline, training, trusted_extra=[select_numbers])


def test_a_model_with_untrusted_types_is_refused_at_startup(registry_with_custom_code, tmp_path, new_customers):
    background = BackgroundServer(create_app(registry_with_custom_code, name="churn", log=tmp_path / "log.db"))
    with pytest.raises(ServingError, match=r"(?s)UntrustedTypesError.*select_numbers.*trusted_extra"):
        background.start()
    trusted = ServiceSettings(trusted_extra=(select_numbers,))  # trusting it on purpose serves it
    with BackgroundServer(create_app(registry_with_custom_code, name="churn", log=tmp_path / "trusted.db", settings=trusted)) as client:
        assert len(client.predict(new_customers.head(2))) == 2


def test_serve_raises_serving_error_for_a_model_with_untrusted_types(registry_with_custom_code, tmp_path):
    "`serve` promises a ServingError when the server cannot start"
    messages = []
    with pytest.raises(ServingError, match=r"(?s)select_numbers.*trusted_extra"):
        serve(registry_with_custom_code.folder, name="churn", port=0, log=tmp_path / "log.db", echo=messages.append)


def test_the_cli_refuses_a_model_with_untrusted_types(registry_with_custom_code, tmp_path):
    finished = subprocess.run([MLOPS_KIT_COMMAND, "serve", "--models", str(registry_with_custom_code.folder), "--port", str(free_port()),
                               "--log", str(tmp_path / "log.db")], capture_output=True, text=True, timeout=120)
    assert finished.returncode != 0
    output = finished.stdout + finished.stderr
    assert "select_numbers" in output and "trusted_extra" in output, output


def test_a_tampered_model_file_is_refused_at_startup(tmp_path, fitted_model, training):
    registry = register_champion(tmp_path / "models", fitted_model, training)
    with open(registry.version("churn").path / "model.skops", "ab") as model_file: model_file.write(b"\0")
    with pytest.raises(ServingError, match=r"ModelIntegrityError.*model\.skops.*changed since it was registered"):
        BackgroundServer(create_app(registry, name="churn", log=tmp_path / "log.db")).start()


def first_lines(command: list, count: int, timeout: float = 60) -> list:
    "The first `count` lines a long-running `command` prints, then stop it"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(timeout, process.kill)  # never hang the test run
    watchdog.start()
    try: return [process.stdout.readline() for _ in range(count)]
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()
        process.stdout.close()


def test_serving_beyond_loopback_prints_a_warning(registry, tmp_path):
    lines = first_lines([MLOPS_KIT_COMMAND, "serve", "--models", str(registry.folder), "--host", "0.0.0.0", "--port", str(free_port()),
                         "--log", str(tmp_path / "log.db")], count=2)
    assert lines[0].startswith("Warning: serving on 0.0.0.0") and "no authentication" in lines[0], lines
    assert lines[1].startswith("Serving 'churn' v1 on http://0.0.0.0:"), lines


# ---- 8. the prediction log in PostgreSQL -----------------------------------------------------------------------

@pytest.mark.service("postgresql")
def test_a_postgresql_prediction_log(postgres_url, registry, new_customers):
    frame = new_customers.head(4)
    with BackgroundServer(create_app(registry, name="churn", log=postgres_url)) as client:
        served = client.predict(frame)
        assert client.feedback({served["id"][0]: 1, served["id"][3]: 0}) == 2
    with PredictionLog(postgres_url) as log:
        assert log.counts() == {"requests": 1, "cases": 4, "labels": 2}
        cases = log.window()
    assert cases["id"].tolist() == served["id"].tolist()
    assert cases["prediction"].tolist() == served["prediction"].tolist()
    pd.testing.assert_frame_equal(cases[list(frame.columns)], frame, check_dtype=False)
    assert cases["label"].iloc[0] == 1 and cases["label"].iloc[3] == 0 and cases["label"].iloc[1:3].isna().all()



@pytest.mark.service("postgresql")
def test_a_postgresql_log_reconnects_after_the_server_drops_its_connections(postgres_url):
    "A dropped connection fails the commit it was in (nothing acknowledged that is not logged); the next commit reconnects"
    import psycopg
    import sqlalchemy
    def served(n_rows: int) -> RequestRecord:
        return RequestRecord(os.urandom(16).hex(), None, time.time(), "predict", "churn", 1, {"tenure_months": list(range(n_rows))},
                             [0] * n_rows, np.full((n_rows, 2), 0.5), 1.0, classes=[0, 1], positive_label=1)
    with PredictionLog(postgres_url) as log:
        log.record(served(1))
        assert log.counts() == {"requests": 1, "cases": 1, "labels": 0}  # a reader's connection waits in the pool too
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            dropped = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                    "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0]
        assert dropped >= 1
        with pytest.raises(sqlalchemy.exc.OperationalError): log.record(served(2))
        log.record(served(3))
        assert log.counts() == {"requests": 2, "cases": 4, "labels": 0}

# ---- 9. the registry's decision threshold ----------------------------------------------------------------------

def test_the_threshold_decides_the_predicted_label(tmp_path, fitted_model, training, new_customers):
    registry = ModelRegistry(tmp_path / "models")
    with_threshold = registry.register(fitted_model, training, CRITERIA, PASSING, name="churn", threshold=0.3)
    without = registry.register(fitted_model, training, CRITERIA, PASSING, name="churn")
    flagged, own = registry.load("churn", with_threshold.version), registry.load("churn", without.version)
    probabilities = flagged.predict_proba(new_customers)
    assert flagged.threshold == 0.3 and own.threshold is None
    np.testing.assert_array_equal(flagged.predict(new_customers), (probabilities[:, 1] >= 0.3).astype(int))
    np.testing.assert_array_equal(own.predict(new_customers), fitted_model.predict(new_customers))
    assert (flagged.predict(new_customers) != own.predict(new_customers)).any()  # 0.3 is not the pipeline's 0.5
    card = (with_threshold.path / "card.md").read_text()
    assert "Decision threshold:** flag when the probability of the positive class is >= 0.3" in card
    assert "Decision threshold:** none: the most probable class" in (without.path / "card.md").read_text()


@pytest.mark.parametrize("threshold", [0, 1, 1.5, -0.1, True, "0.5", math.nan])
def test_a_bad_threshold_is_refused(tmp_path, fitted_model, training, threshold):
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(ValueError, match="threshold must be a probability strictly between 0 and 1"):
        registry.register(fitted_model, training, CRITERIA, PASSING, name="churn", threshold=threshold)
    assert registry.names() == []


# ---- 11. nothing lost, nothing left behind: failed starts, bad options (the refused logs: nbs/deployment/01_prediction_log) ----

def sha256(path) -> str:
    import hashlib
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_a_failed_start_leaves_no_prediction_log_behind(registry, registry_with_custom_code, tmp_path):
    log = tmp_path / "predictions.db"
    with pytest.raises(UnknownVersionError): create_app(registry, name="churn", version=7, log=log)
    with pytest.raises(ServingError, match="untrusted|UntrustedTypesError"): BackgroundServer(create_app(registry_with_custom_code, name="churn", log=log)).start()
    with pytest.raises(ServingError, match="select_numbers"): serve(registry_with_custom_code.folder, name="churn", port=0, log=log, echo=lambda text: None)
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServingError, match=f"Cannot listen on 127.0.0.1:{port} \\(Address already in use\\); choose another port"):
            BackgroundServer(create_app(registry, name="churn", log=log), port=port).start()
        with pytest.raises(ServingError, match="Address already in use"): serve(registry.folder, name="churn", port=port, log=log, echo=lambda text: None)
    assert not log.exists()


@pytest.mark.parametrize("arguments, message", [
    (dict(port=99999), "port must be a whole number from 0 to 65535"), (dict(port=-1), "port must be a whole number from 0 to 65535"),
    (dict(port="8000"), "port must be a whole number"), (dict(port=True), "port must be a whole number"),
    (dict(host=""), "host must be an address"), (dict(timeout=0), "timeout must be a number of seconds > 0"),
    (dict(timeout=math.nan), "timeout must be a number of seconds > 0")])
def test_bad_background_server_arguments(registry, tmp_path, arguments, message):
    with pytest.raises(ServingError, match=message): BackgroundServer(create_app(registry, name="churn", log=tmp_path / "log.db"), **arguments)
    assert not (tmp_path / "log.db").exists()


@pytest.mark.parametrize("arguments, message", [
    (dict(version=0), "version must be a whole number >= 1"), (dict(version="1"), "version must be a whole number >= 1"),
    (dict(name=""), "name must be the name of a registered model"), (dict(alias=""), "alias must be text")])
def test_bad_model_choices_are_refused_by_create_app(registry, tmp_path, arguments, message):
    with pytest.raises(ServingError, match=message): create_app(registry, log=tmp_path / "log.db", **{"name": "churn", **arguments})
    with pytest.raises(ServingError, match="No model registry folder at"): create_app(tmp_path / "no-models", name="churn", log=tmp_path / "log.db")
    assert list(tmp_path.iterdir()) == []


def test_the_client_checks_what_it_can_before_sending(server, new_customers, log_reader):
    before = log_reader.counts()
    with ServiceClient(server.url, "churn") as client:
        with pytest.raises(MlopsKitError, match="predict got no rows"): client.predict(new_customers.head(0))
        with pytest.raises(MlopsKitError, match="predict got no rows"): client.predict([])
        infinite = new_customers.head(2).assign(monthly_charges=[1.0, math.inf])
        with pytest.raises(MlopsKitError, match=r"row 1, column 'monthly_charges' is inf: the service takes finite numbers"): client.predict(infinite)
        with pytest.raises(WrongTypeError, match="item 0 is '3'"): client.predict([3])
        with pytest.raises(MlopsKitError, match="feedback got no labels"): client.feedback({})
        served = client.predict(new_customers.head(2).assign(monthly_charges=[math.nan, 10.0], seen=pd.Timestamp("2024-07-01")))
        with pytest.raises(ServingError, match="must be one of the model's classes .* got nan"): client.feedback({served["id"].iloc[0]: math.nan})
        assert client.feedback(pd.Series(np.array([1, 0]), index=served["id"])) == 2  # numpy labels are sent as plain numbers
    assert log_reader.counts()["requests"] == before["requests"] + 1


@pytest.mark.parametrize("arguments, message", [
    (["--port", "99999"], "argument --port: must be a whole number from 1 to 65535, got '99999'"),
    (["--port", "0"], "argument --port: must be a whole number from 1 to 65535, got '0'"),
    (["--port", "-1"], "argument --port: must be a whole number from 1 to 65535, got '-1'"),
    (["--max-batch-rows", "0"], "argument --max-batch-rows: must be a whole number >= 1, got '0'"),
    (["--max-body-bytes", "-5"], "argument --max-body-bytes: must be a whole number >= 1, got '-5'"),
    (["--scoring-processes", "-1"], "argument --scoring-processes: must be a whole number from 0 to 64, got '-1'"),
    (["--scoring-processes", "two"], "argument --scoring-processes: must be a whole number from 0 to 64, got 'two'"),
    (["--process-batch-rows", "0"], "argument --process-batch-rows: must be a whole number >= 1, got '0'"),
    (["--version", "0"], "argument --version: must be a whole number >= 1, got '0'"),
    (["--version", "7"], "has no version 7"), (["--name", "churm"], "No model 'churm'"),
    (["--log", "{tmp}"], "is a folder: give the path of a file"), (["--log", "{tmp}/notes.txt"], "is not a SQLite database"),
    (["--log", "{tmp}/nowhere/log.db"], "nowhere does not exist"), (["--models", "{tmp}/no-models"], "no model registry folder here"),
    (["--host", "nonsense.invalid"], "Cannot listen on nonsense.invalid")])
def test_the_serve_command_refuses_bad_arguments_with_exit_code_2_and_no_traceback(registry, tmp_path, arguments, message):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    before = sha256(notes)
    command = [MLOPS_KIT_COMMAND, "serve", "--models", str(registry.folder), "--port", str(free_port()),
               *[argument.format(tmp=tmp_path) for argument in arguments]]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    output = finished.stdout + finished.stderr
    assert finished.returncode == 2 and re.search(message, output) and "Traceback" not in output, output
    assert sha256(notes) == before and sorted(tmp_path.iterdir()) == [notes]  # no predictions.db made by a refused start


def test_the_serve_command_on_a_port_in_use_says_so_and_leaves_no_log(registry, tmp_path):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        finished = subprocess.run([MLOPS_KIT_COMMAND, "serve", "--models", str(registry.folder), "--port", str(taken.getsockname()[1]),
                                   "--log", str(tmp_path / "log.db")], capture_output=True, text=True, timeout=120)
    output = finished.stdout + finished.stderr
    assert finished.returncode == 2 and "Address already in use); choose another port" in output and "Traceback" not in output, output
    assert output.count("\n") == 1 and not (tmp_path / "log.db").exists()


# ---- 10. any task: multiclass, regression, binary with text labels -----------------------------------------------

from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.metrics import f1_score, mean_squared_error, recall_score  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from mlops_kit.data import Dataset, load_real_dataset  # noqa: E402
from mlops_kit.lifecycle import Metric, MetricRegistry  # noqa: E402

TASKS = ["multiclass", "regression", "binary"]
LABEL_DATATYPES = {"multiclass": "INT64", "regression": "FP64", "binary": "BYTES"}


def task_data(task: str):
    "wine (multiclass, labels 0/1/2), diabetes (regression), breast cancer with the labels 'malignant'/'benign'; and criteria"
    if task == "multiclass": return load_real_dataset("wine"), Criteria("f1_macro >= 0.8")
    if task == "regression": return load_real_dataset("diabetes"), Criteria("rmse <= 70")
    cancer = load_real_dataset("breast_cancer")
    words = cancer.frame.assign(malignant=cancer.y.map({1: "malignant", 0: "benign"}))
    return Dataset(words, target="malignant", features=cancer.features, positive_label="malignant"), Criteria("recall >= 0.8")


@pytest.fixture(scope="module", params=TASKS)
def task_service(request, tmp_path_factory):
    "A server of one task's model (registered as its champion), the loaded bundle, the data, its log; shared by this section's tests"
    task = request.param
    data, criteria = task_data(task)
    model = make_pipeline(StandardScaler(), Ridge() if task == "regression" else LogisticRegression(max_iter=1000)).fit(data.X, data.y)
    registry = ModelRegistry(tmp_path_factory.mktemp(task) / "models")
    measured = {criteria.primary.metric: 0.95 if task != "regression" else 55.0}
    version = registry.register(model, data, criteria, measured, name=task, threshold=0.3 if task == "binary" else None)
    registry.promote(task, version.version)
    log_path = registry.folder.parent / "predictions.db"
    with BackgroundServer(create_app(registry, name=task, log=log_path)) as client:
        yield task, client, registry.load(task), data, log_path


def test_any_task_predicts_labels_or_values_as_the_bundle_does(task_service):
    task, client, bundle, data, _ = task_service
    frame = data.frame.sample(40, random_state=0)
    answer = client.predict(frame)
    if task == "regression":  # the same values, but for the last bits of summing in another order
        np.testing.assert_allclose(answer.prediction.to_numpy(float), bundle.predict(frame), rtol=1e-12)
        assert all(isinstance(value, float) for value in answer.prediction)
        assert answer.probability.isna().all() and answer.probabilities.isna().all()
        return
    assert answer.prediction.tolist() == bundle.predict(frame).tolist()
    probabilities = bundle.predict_proba(frame)
    np.testing.assert_allclose(np.array(answer.probabilities.tolist()), probabilities)
    if task == "binary":
        assert set(answer.prediction) <= {"malignant", "benign"}
        np.testing.assert_allclose(answer.probability, probabilities[:, 1])  # the positive class's, 'malignant'
    else:
        assert set(answer.prediction) <= {0, 1, 2} and all(type(value) is int for value in answer.prediction)
        np.testing.assert_allclose(answer.probability, probabilities.max(axis=1))


def test_any_task_predict_answer_fits_the_documented_response_model(task_service):
    "/predict writes its JSON itself (not validated again by FastAPI): it must still be what the OpenAPI schema promises"
    from mlops_kit.deployment.protocol import learner_models as _learner_models
    task, client, bundle, data, _ = task_service
    response = httpx.post(f"{client.url}/predict", json={"records": records_of(data.X.head(5))}, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    documented = _learner_models(task, bundle.schema, 10, task, bundle.classes)["PredictResponse"]
    answer = documented.model_validate_json(response.content)
    assert answer.model_dump() == response.json() and answer.classes == bundle.classes
    assert (answer.class_probabilities is None) == (task == "regression")


def test_any_task_infer_outputs_are_named_for_what_they_hold(task_service):
    task, client, bundle, data, _ = task_service
    frame = data.X.head(6)
    inputs = [dict(name=name, datatype="FP64", shape=[len(frame)], data=frame[name].tolist()) for name in frame.columns]
    outputs = outputs_by_name(client.infer({"inputs": inputs}))
    assert outputs["predict"]["datatype"] == LABEL_DATATYPES[task]
    np.testing.assert_array_equal(outputs["predict"]["data"], bundle.predict(frame)) if task != "regression" else \
        np.testing.assert_allclose(outputs["predict"]["data"], bundle.predict(frame), rtol=1e-12)
    metadata = client.metadata()
    assert metadata["parameters"]["task"] == task and metadata["parameters"]["classes"] == bundle.classes
    if task == "regression":
        assert list(outputs) == ["predict", "prediction_id"] and [output["name"] for output in metadata["outputs"]] == ["predict", "prediction_id"]
        with pytest.raises(ServiceCallError, match="this model is a regressor: it has no 'predict_proba' output"):
            client.infer({"inputs": inputs, "outputs": [{"name": "predict_proba"}]})
        return
    proba = outputs["predict_proba"]
    assert proba["shape"] == [6, len(bundle.classes)]
    np.testing.assert_allclose(np.reshape(proba["data"], proba["shape"]), bundle.predict_proba(frame))
    described = {output["name"]: output for output in metadata["outputs"]}["predict_proba"]
    assert described["shape"] == [-1, len(bundle.classes)] and described["parameters"] == {"classes": bundle.classes}


def test_any_task_takes_its_labels_as_feedback_and_the_window_keeps_them(task_service):
    task, client, bundle, data, log_path = task_service
    frame = data.frame.iloc[100:160]
    answer = client.predict(frame)
    truth = frame[data.target].tolist()
    assert client.feedback(dict(zip(answer.id, truth))) == len(frame)
    with PredictionLog(log_path) as log:
        window = log.window()
    window = window[window.id.isin(answer.id)].set_index("id").loc[answer.id]
    assert window.prediction.tolist() == answer.prediction.tolist() and window.label.tolist() == truth
    if task == "regression":
        assert window.probability.isna().all() and window.probabilities.isna().all()
        assert math.isclose(mean_squared_error(window.label, window.prediction) ** 0.5,
                            mean_squared_error(frame[data.target], bundle.predict(frame)) ** 0.5, rel_tol=1e-12)
    elif task == "multiclass":
        assert window.probability.isna().all()  # no positive class
        np.testing.assert_allclose(np.array(window.probabilities.tolist()), bundle.predict_proba(frame))
        assert f1_score(window.label, window.prediction, average="macro") == f1_score(frame[data.target], bundle.predict(frame), average="macro")
    else:
        np.testing.assert_allclose(window.probability, bundle.predict_proba(frame)[:, 1])
        assert recall_score(window.label, window.prediction, pos_label="malignant") == \
            recall_score(frame[data.target], bundle.predict(frame), pos_label="malignant")


WRONG_LABELS = {"multiclass": [(7, "7 is not one of the model's classes \\[0, 1, 2\\]"), ("1", "'1' is not one of the model's classes"),
                               (1.0, "1.0 is not one of the model's classes")],
                "binary": [("Malignant", "'Malignant' is not one of the model's classes \\['benign', 'malignant'\\]"),
                           (1, "1 is not one of the model's classes \\['benign', 'malignant'\\]")],
                "regression": [("high", "Input should be a valid"), (True, "Input should be a valid")]}


def test_a_label_that_is_not_one_of_the_tasks_is_refused_and_nothing_is_saved(task_service):
    task, client, bundle, data, log_path = task_service
    answer = client.predict(data.frame.head(2))
    with PredictionLog(log_path) as log: before = log.counts()
    for label, message in WRONG_LABELS[task]:
        with pytest.raises(ServiceCallError, match=message) as refused:
            client._call("POST", "/feedback", json={"labels": [{"id": answer.id[0], "label": label}]})
        assert refused.value.status == 422
    if task == "regression":
        response = httpx.post(f"{client.url}/feedback", content=f'{{"labels": [{{"id": "{answer.id[0]}", "label": NaN}}]}}',
                              headers={"content-type": "application/json"})
        assert response.status_code == 422
    with PredictionLog(log_path) as log: assert log.counts() == before


def test_the_openapi_schema_lists_the_classes_a_label_may_take(task_service):
    task, client, bundle, _, _ = task_service
    schema = httpx.get(f"{client.url}/openapi.json").json()
    label = schema["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    while "$ref" in label: label = schema["components"]["schemas"][label["$ref"].rsplit("/", 1)[-1]]
    label = label["properties"]["labels"]["items"]
    if "$ref" in label: label = schema["components"]["schemas"][label["$ref"].rsplit("/", 1)[-1]]
    label = label["properties"]["label"]
    if task == "regression": assert "enum" not in label and {"type": "number"} in label["anyOf"]
    else: assert label["enum"] == bundle.classes


def test_tritonclient_gets_labels_and_class_probabilities_from_a_multiclass_model(tmp_path):
    import tritonclient.http as triton_http
    data, criteria = task_data("multiclass")
    named = Dataset(data.frame.assign(cultivar=data.y.map({0: "barolo", 1: "grignolino", 2: "barbera"})), target="cultivar", features=data.features)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(named.X, named.y)
    registry = ModelRegistry(tmp_path / "models")
    registry.promote("wine", registry.register(model, named, criteria, {"f1_macro": 0.95}, name="wine").version)
    frame = named.X.head(7)
    with BackgroundServer(create_app(registry, name="wine", log=tmp_path / "log.db")) as client:
        triton = triton_http.InferenceServerClient(url=client.url.removeprefix("http://"))
        try:
            metadata = triton.get_model_metadata("wine")
            result = triton.infer("wine", triton_float_inputs(frame), outputs=triton_outputs())
        finally: triton.close()
    assert metadata["parameters"]["classes"] == ["barbera", "barolo", "grignolino"]
    labels = [label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("predict").tolist()]
    assert labels == model.predict(frame).tolist()
    probabilities = result.as_numpy("predict_proba")
    assert probabilities.shape == (7, 3)
    np.testing.assert_allclose(probabilities, model.predict_proba(frame))


def test_the_serve_command_serves_a_multiclass_model_judged_on_f1_macro(tmp_path):
    data, criteria = task_data("multiclass")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(data.X, data.y)
    registry = ModelRegistry(tmp_path / "models")
    registry.promote("wine", registry.register(model, data, criteria, {"f1_macro": 0.95}, name="wine").version)
    with serve_command("--models", registry.folder, "--log", tmp_path / "log.db") as (url, process):  # the only model: no --name
        metadata = wait_until_ready(url, process, "wine")
        answer = httpx.post(f"{url}/predict", json={"records": records_of(data.X.head(3))}, timeout=30).json()
    assert metadata["parameters"]["classes"] == [0, 1, 2] and metadata["parameters"]["task"] == "multiclass"
    assert {output["name"]: output for output in metadata["outputs"]}["predict_proba"]["parameters"] == {"classes": [0, 1, 2]}
    assert answer["predictions"] == model.predict(data.X.head(3)).tolist() and answer["classes"] == [0, 1, 2]
    np.testing.assert_allclose(answer["class_probabilities"], model.predict_proba(data.X.head(3)))


METRIC_MODULE = '''
import numpy as np
def share_within_one(y_true, y_pred):
    "The share of wines predicted within one cultivar of the truth"
    return float(np.mean(np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float)) <= 1))
'''


def test_a_model_judged_on_a_metric_of_ones_own_is_served_by_a_fresh_process(tmp_path, monkeypatch):
    folder = tmp_path / "my_code"
    folder.mkdir()
    (folder / "wine_metrics_for_serving.py").write_text(METRIC_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    import wine_metrics_for_serving
    metrics = MetricRegistry.default()
    metrics.register(Metric("within_one", "higher", wine_metrics_for_serving.share_within_one, lower=0, upper=1, tasks=("multiclass",)))
    data, _ = task_data("multiclass")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(data.X, data.y)
    registry = ModelRegistry(tmp_path / "models")
    version = registry.register(model, data, Criteria("within_one >= 0.9", ["f1_macro >= 0.8"], registry=metrics),
                                {"within_one": 0.99, "f1_macro": 0.95}, name="wine")
    registry.promote("wine", version.version)
    with_path = dict(os.environ, PYTHONPATH=str(folder))
    with serve_command("--models", registry.folder, "--name", "wine", "--log", tmp_path / "log.db", env=with_path) as (url, process):
        wait_until_ready(url, process, "wine")
        answer = httpx.post(f"{url}/predict", json={"records": records_of(data.X.head(2))}, timeout=30).json()
    assert answer["predictions"] == model.predict(data.X.head(2)).tolist()
    without_path = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    finished = subprocess.run([MLOPS_KIT_COMMAND, "serve", "--models", str(registry.folder), "--port", str(free_port()),
                               "--log", str(tmp_path / "other.db")], capture_output=True, text=True, timeout=120, env=without_path, cwd=tmp_path)
    output = finished.stdout + finished.stderr
    assert finished.returncode == 2 and "'wine_metrics_for_serving:share_within_one', which cannot be imported here" in output, output
    assert "Traceback" not in output and not (tmp_path / "other.db").exists()  # refused before anything is made


def test_create_app_serves_the_only_model_and_names_them_when_there_are_several(registry, tmp_path, fitted_model, training):
    assert create_app(registry, log=tmp_path / "log.db").state.service.name == "churn"
    several = register_champion(tmp_path / "models", fitted_model, training)
    several.register(fitted_model, training, CRITERIA, PASSING, name="churn-b")
    with pytest.raises(MlopsKitError, match="Which model\\? The registry in .* holds 'churn', 'churn-b'"):
        create_app(several, log=tmp_path / "log.db")
    finished = subprocess.run([MLOPS_KIT_COMMAND, "serve", "--models", str(several.folder), "--port", str(free_port()),
                               "--log", str(tmp_path / "log.db")], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2 and "give name=" in finished.stderr + finished.stdout
    assert not (tmp_path / "log.db").exists()
    with pytest.raises(TypeError): ServiceClient("http://127.0.0.1:1")
