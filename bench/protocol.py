"""Decoding an Open Inference Protocol (v2) request into the model's DataFrame: the whole-tensor check against the
value-by-value one, in one run.

The bodies are the serving benchmark's V2 columnar bodies: case-study rows from the months after training, one input
tensor per feature (BYTES for text, BOOL for booleans, FP64 for numbers, INT64 for whole numbers), 1 row and 1,000 rows.
Both sides run the service's own code (`mlops_kit.deployment.protocol` and the app's frame builder), from the body's
bytes to what the model and the log receive:

- after: pydantic parses the body, `columns_from_tensors` checks each tensor as a whole (its Python types as a set, its
  numbers as one numpy array), the DataFrame is built column by column by numpy, the log's JSON is made by pydantic;
- before: the same code with the whole-tensor check switched off, so every tensor is checked value by value as it was
  before issue 16, pandas infers the DataFrame from the lists, and the log's JSON is made by `json.dumps`.

The two sides must give equal DataFrames and equal logged columns. They take turns, --rounds rounds of --repeats calls
each; printed: the median milliseconds per request of each, after / before, and the parsers measured on the same bodies
(pydantic's validating parser, which the service uses, pydantic-core's plain JSON parser, the standard library's).

    python bench/protocol.py [--rounds 5] [--repeats 200]
"""
import argparse, json, os, platform, statistics, time
from unittest import mock


def v2_body(frame, kinds: dict) -> bytes:
    "One V2 request of `frame`'s rows: one tensor per feature, missing values as null"
    datatypes = {"boolean": "BOOL", "integer": "INT64", "numeric": "FP64"}
    columns = frame.astype(object).where(frame.notna(), None).to_dict(orient="list")
    inputs = [dict(name=name, datatype=datatypes.get(kind, "BYTES"), shape=[len(frame)], data=columns[name]) for name, kind in kinds.items()]
    return json.dumps({"inputs": inputs}).encode()


def decoders(kinds: dict):
    "The two sides, each body -> (DataFrame, the JSON the log receives)"
    import pandas as pd, pydantic_core
    from mlops_kit.deployment import protocol
    from mlops_kit.deployment.app import _frame_of
    InferenceRequest = protocol.protocol_models()["InferenceRequest"]
    def after(body):
        columns = protocol.columns_from_tensors(InferenceRequest.model_validate_json(body).inputs, kinds, 10_000)
        return _frame_of(columns), pydantic_core.to_json(columns)
    def before(body):
        with mock.patch.object(protocol, "_all_valid", lambda values, datatype: False):  # every tensor value by value
            columns = protocol.columns_from_tensors(InferenceRequest.model_validate_json(body).inputs, kinds, 10_000)
        return pd.DataFrame(columns), json.dumps(columns).encode()
    return {"before": before, "after": after}


def milliseconds(call, repeats: int) -> float:
    "Median milliseconds of `call()` over `repeats` calls"
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def compare(body: bytes, sides: dict, rounds: int, repeats: int) -> dict:
    "Median milliseconds of each side, taking turns; the sides must decode the body alike"
    import pandas as pd
    (frame_before, logged_before), (frame_after, logged_after) = sides["before"](body), sides["after"](body)
    pd.testing.assert_frame_equal(frame_after, frame_before)
    assert json.loads(logged_after) == json.loads(logged_before), "the logged columns differ"
    times = {name: [] for name in sides}
    for _ in range(rounds):
        for name, decode in sides.items(): times[name].append(milliseconds(lambda: decode(body), repeats))
    return {name: statistics.median(values) for name, values in times.items()}


def parsers(body: bytes, repeats: int) -> dict:
    import pydantic_core
    from mlops_kit.deployment import protocol_models
    InferenceRequest = protocol_models()["InferenceRequest"]
    return {"pydantic (validating)": milliseconds(lambda: InferenceRequest.model_validate_json(body), repeats),
            "pydantic-core from_json": milliseconds(lambda: pydantic_core.from_json(body), repeats),
            "json.loads": milliseconds(lambda: json.loads(body), repeats)}


def main(args):
    from mlops_kit.data import infer_schema, load_case_study
    rows = load_case_study(seed=42).clean_sample().between(start="2024-07-01").X
    kinds = {name: column.kind for name, column in infer_schema(rows).columns.items()}
    sides = decoders(kinds)
    print(f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, Python {platform.python_version()}")
    for size in (1, 1000):
        body = v2_body(rows.head(size), kinds)
        times = compare(body, sides, args.rounds, args.repeats if size > 1 else args.repeats * 10)
        print(f"{size:>5} row(s), {len(body):,} bytes: before {times['before']:.3f} ms, after {times['after']:.3f} ms, "
              f"after / before {times['after'] / times['before']:.2f}x")
        print("       parsing alone: " + ", ".join(f"{name} {ms:.3f} ms" for name, ms in parsers(body, args.repeats).items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=200)
    main(parser.parse_args())
