"""Our drift report against Evidently 0.7's DataDriftPreset, on the same data, in one run.

Reference and current data of 10k, 100k and 1M rows each: 15 numerical (float) columns and 5 categorical (string) ones,
several with a planted shift, two with missing values, two rounded to few distinct values (still floats). The data is
made from a fixed seed and written once per size to an .npz file that both sides read.

- ours: `mlops_kit.deployment.drift_report(reference, current, kinds=...)`, in this process (pandas 3);
- Evidently: `Report([DataDriftPreset()], include_tests=True).run(...)` on `Dataset`s built with an explicit
  `DataDefinition`, in its own virtual environment (Evidently 0.7 does not install next to pandas 3), made on first use
  in the system's temporary folder and reused: `python -m venv` with this interpreter, then
  `pip install "evidently==0.7.*" "pandas<3"`.

Column types are declared on both sides, so type inference is not compared. Only the report is timed (not imports, data
loading or the Datasets), median of --repeats runs after an untimed warm-up on 1,000 rows; a side whose single run at a
size takes more than --max-run seconds is run once there. Printed per size: seconds of each, Evidently / ours (target:
at least 30x at 100k and 1M rows), the floor (sorting every numerical column and counting every categorical one, in
reference and current) and ours / floor, and whether the verdicts are identical: drift yes/no per column and for the
dataset; methods must match and scores agree within --tolerance (relative), every mismatch is printed.

    python bench/drift.py [--sizes 10000 100000 1000000] [--repeats 3] [--max-run 240] [--tolerance 1e-6]
"""
import argparse, json, math, os, platform, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

TARGET = 30 # Evidently / ours, at least, at the sizes in TARGET_SIZES
TARGET_SIZES = (100_000, 1_000_000)
ENV_NAME = "mlops-kit-evidently-env"
REQUIREMENTS = ["evidently==0.7.*", "pandas<3"]
SEED = 7
# Evidently's names for its methods -> ours
METHOD_NAMES = {"K-S p_value": "ks", "Wasserstein distance (normed)": "wasserstein", "chi-square p_value": "chisquare",
                "Z-test p_value": "z", "Jensen-Shannon distance": "jensenshannon", "PSI": "psi"}


# ---- the data: (reference, current) per column, from one seed

def _mixture(rng, n, weight):
    "Half-and-half normal mixture at -2 and 2, with `weight` of the rows in the left mode"
    left = rng.random(n) < weight
    return np.where(left, rng.normal(-2, 1, n), rng.normal(2, 1, n))

def _with_missing(rng, values, share):
    values = values.copy()
    values[rng.random(values.size) < share] = np.nan
    return values

def _categories(rng, n, names, shares, missing=0.0):
    "Strings drawn with `shares`; a `missing` share of them empty, read as missing on both sides"
    values = rng.choice(np.array(names), n, p=shares)
    if missing: values[rng.random(n) < missing] = ""
    return values

# name -> function(rng, n, is_current) -> array; the comment says whether it is meant to drift (Evidently's default
# methods at more than 1,000 rows: normed Wasserstein distance >= 0.1 for numerical, Jensen-Shannon distance >= 0.1 for categorical)
NUMERICAL = {
    "normal": lambda rng, n, cur: rng.normal(0, 1, n), # no
    "normal_shift": lambda rng, n, cur: rng.normal(0.5 if cur else 0, 1, n), # yes, about 0.5
    "normal_small_shift": lambda rng, n, cur: rng.normal(0.03 if cur else 0, 1, n), # no, about 0.03
    "normal_scale": lambda rng, n, cur: rng.normal(0, 1.6 if cur else 1, n), # yes, about 0.48
    "lognormal": lambda rng, n, cur: rng.lognormal(0, 1, n), # no
    "lognormal_shift": lambda rng, n, cur: rng.lognormal(0.3 if cur else 0, 1, n), # yes, about 0.27
    "uniform": lambda rng, n, cur: rng.uniform(0, 100, n), # no
    "uniform_stretch": lambda rng, n, cur: rng.uniform(0, 120 if cur else 100, n), # yes, about 0.35
    "exponential": lambda rng, n, cur: rng.exponential(1, n), # no
    "exponential_scale": lambda rng, n, cur: rng.exponential(1.3 if cur else 1, n), # yes, about 0.3
    "bimodal_weights": lambda rng, n, cur: _mixture(rng, n, 0.3 if cur else 0.5), # yes, about 0.36
    "student_t": lambda rng, n, cur: rng.standard_t(3, n), # no
    "rounded_tenths": lambda rng, n, cur: np.round(rng.normal(50.5 if cur else 50, 10, n), 1), # no, about 0.05; ~800 values
    "rounded_units_shift": lambda rng, n, cur: np.round(rng.normal(22 if cur else 20, 5, n)), # yes, about 0.4; ~50 values
    "gamma_missing": lambda rng, n, cur: _with_missing(rng, rng.gamma(2, 1.02 if cur else 1, n), 0.01), # no, about 0.03; 1% NaN
}
CATEGORICAL = {
    "plan": lambda rng, n, cur: _categories(rng, n, ["basic", "plus", "pro", "team"], [0.4, 0.3, 0.2, 0.1]), # no
    "channel_shift": lambda rng, n, cur: _categories(rng, n, ["web", "app", "store"], [0.3, 0.3, 0.4] if cur else [0.5, 0.3, 0.2]), # yes
    "region_small_change": lambda rng, n, cur: _categories(rng, n, ["n", "e", "s", "w"],
                                                           [0.27, 0.25, 0.24, 0.24] if cur else [0.25] * 4), # no
    "device_new_value": lambda rng, n, cur: (_categories(rng, n, ["a", "b", "c", "d", "e", "f"], [0.18] * 5 + [0.1]) if cur
                                             else _categories(rng, n, ["a", "b", "c", "d", "e"], [0.2] * 5)), # yes: a new value
    "segment_missing_shift": lambda rng, n, cur: _categories(rng, n, ["s1", "s2", "s3", "s4", "s5", "s6"],
                                                             [0.2, 0.2, 0.2, 0.2, 0.1, 0.1] if cur else [0.4, 0.2, 0.2, 0.1, 0.05, 0.05],
                                                             missing=0.02), # yes; 2% missing
}
# 10 of 20 columns are meant to drift: the dataset drifts at Evidently's default share, 0.5 (at least half)


def write_data(path: Path, rows: int):
    "Reference and current data of `rows` rows each, as `ref/NAME` and `cur/NAME` arrays"
    arrays = {}
    for which, is_current in [("ref", False), ("cur", True)]:
        for number, (name, make) in enumerate({**NUMERICAL, **CATEGORICAL}.items()):
            rng = np.random.default_rng([SEED, rows, int(is_current), number])
            arrays[f"{which}/{name}"] = make(rng, rows, is_current)
    np.savez(path, **arrays)


def load_frames(path: str, rows: int | None = None):
    "Reference and current DataFrames from `write_data`'s file (the first `rows` rows, if given); empty strings as missing"
    import pandas as pd
    data = np.load(path)
    frames = []
    for which in ["ref", "cur"]:
        columns = {}
        for name in [*NUMERICAL, *CATEGORICAL]:
            values = data[f"{which}/{name}"][:rows]
            columns[name] = values if name in NUMERICAL else np.where(values == "", None, values).astype(object)
        frames.append(pd.DataFrame(columns))
    return frames


def timed(function, repeats: int, max_run: float) -> list:
    "Seconds of each of up to `repeats` calls of `function`; stops after a call longer than `max_run` seconds"
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
        if times[-1] > max_run: break
    return times


# ---- Evidently's side, run by `--evidently` with the Evidently environment's python

def run_evidently(path: str, repeats: int, max_run: float):
    import warnings
    warnings.filterwarnings("ignore")
    import evidently, pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    definition = DataDefinition(numerical_columns=list(NUMERICAL), categorical_columns=list(CATEGORICAL))

    def datasets(rows=None):
        reference, current = load_frames(path, rows)
        return Dataset.from_pandas(reference, data_definition=definition), Dataset.from_pandas(current, data_definition=definition)

    def report(reference, current): return Report([DataDriftPreset()], include_tests=True).run(current_data=current, reference_data=reference)

    report(*datasets(1000)) # warm-up: Evidently's lazy imports
    reference, current = datasets()
    snapshots = []
    times = timed(lambda: snapshots.append(report(reference, current)), repeats, max_run)
    result = snapshots[-1].dict()
    metrics = {metric["id"]: metric for metric in result["metrics"]}
    columns, share, dataset_drift = {}, None, None
    for test in result["tests"]:
        config = test["metric_config"]["params"]
        if config["type"].endswith("ValueDrift"):
            value = metrics[test["metric_config"]["metric_id"]]["value"]
            columns[config["column"]] = dict(method=METHOD_NAMES.get(config["method"], config["method"]), score=value,
                                             threshold=config["threshold"], drift=test["status"] == "FAIL")
        elif config["type"].endswith("DriftedColumnsCount"):
            share = metrics[test["metric_config"]["metric_id"]]["value"]["share"]
            dataset_drift = test["status"] == "FAIL" # the test is "share of drifted columns less than drift_share"
    print(json.dumps(dict(times=times, columns=columns, share=share, dataset_drift=dataset_drift,
                          versions=f"evidently {evidently.__version__}, pandas {pd.__version__}, numpy {np.__version__}")))


def evidently_python() -> Path:
    "The Evidently environment's python, made on first use"
    env = Path(tempfile.gettempdir()) / ENV_NAME
    python = env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    check = [str(python), "-c", "import evidently, sys; sys.exit(0 if evidently.__version__.startswith('0.7.') else 1)"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0: return python
    print(f"Making the Evidently environment ({' '.join(REQUIREMENTS)}); this takes a few minutes the first time", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
    subprocess.run(check, check=True)
    return python


def evidently_side(python: Path, path: Path, repeats: int, max_run: float) -> dict:
    environment = dict(os.environ, DO_NOT_TRACK="1") # no usage telemetry from the benchmark
    output = subprocess.run([str(python), __file__, "--evidently", str(path), "--repeats", str(repeats), "--max-run", str(max_run)],
                            capture_output=True, text=True, env=environment)
    if output.returncode != 0: raise RuntimeError(f"The Evidently side failed:\n{output.stderr[-3000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


# ---- our side and the floor, in this process

def our_side(path: Path, repeats: int, max_run: float) -> dict:
    from mlops_kit.deployment import drift_report
    kinds = {**{name: "numerical" for name in NUMERICAL}, **{name: "categorical" for name in CATEGORICAL}}
    drift_report(*load_frames(str(path), 1000), kinds=kinds) # warm-up: scipy's lazy imports
    reference, current = load_frames(str(path))
    reports = []
    times = timed(lambda: reports.append(drift_report(reference, current, kinds=kinds)), repeats, max_run)
    report = reports[-1]
    columns = {result.column: dict(method=result.method, score=result.score, threshold=result.threshold, drift=result.drifted)
               for result in report.columns}
    floor = timed(lambda: floor_work(reference, current), repeats, max_run)
    return dict(times=times, columns=columns, share=report.share, dataset_drift=report.dataset_drift, floor=floor,
                dtypes=f"{reference[list(NUMERICAL)[0]].dtype} and {reference[list(CATEGORICAL)[0]].dtype}")


def floor_work(reference, current):
    "The least any drift report must do: sort every numerical column once and count every categorical one, in both frames"
    for frame in [reference, current]:
        for name in NUMERICAL: np.sort(frame[name].to_numpy())
        for name in CATEGORICAL: frame[name].value_counts()


# ---- comparing and printing

def mismatches(ours: dict, theirs: dict, tolerance: float) -> list:
    "What differs between the two results: methods, scores beyond `tolerance`, verdicts, columns, the dataset's verdict"
    found = []
    for name in sorted(set(ours["columns"]) | set(theirs["columns"])):
        mine, other = ours["columns"].get(name), theirs["columns"].get(name)
        if mine is None or other is None:
            found.append(f"{name}: only in {'Evidently' if mine is None else 'ours'}")
            continue
        if mine["method"] != other["method"]: found.append(f"{name}: method {mine['method']} (ours) != {other['method']} (Evidently)")
        if not math.isclose(mine["score"], other["score"], rel_tol=tolerance, abs_tol=1e-12):
            found.append(f"{name}: score {mine['score']!r} (ours) != {other['score']!r} (Evidently), "
                         f"relative difference {abs(mine['score'] - other['score']) / max(abs(other['score']), 1e-300):.2g}")
        if mine["drift"] != other["drift"]: found.append(f"{name}: drift {mine['drift']} (ours) != {other['drift']} (Evidently)")
    if ours["dataset_drift"] != theirs["dataset_drift"]:
        found.append(f"dataset: drift {ours['dataset_drift']} (ours) != {theirs['dataset_drift']} (Evidently)")
    if theirs["share"] is None or not math.isclose(ours["share"], theirs["share"]):
        found.append(f"dataset: drifted share {ours['share']} (ours) != {theirs['share']} (Evidently)")
    return found


def machine(evidently_versions: str) -> str:
    import pandas, scipy
    return (f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; ours: pandas {pandas.__version__}, "
            f"numpy {np.__version__}, scipy {scipy.__version__}; Evidently side: {evidently_versions}")


def main(args):
    import warnings
    warnings.filterwarnings("ignore")
    python = evidently_python()
    rows_out = []
    with tempfile.TemporaryDirectory() as scratch:
        for rows in args.sizes:
            path = Path(scratch) / f"drift-{rows}.npz"
            write_data(path, rows)
            ours = our_side(path, args.repeats, args.max_run)
            theirs = evidently_side(python, path, args.repeats, args.max_run)
            if not rows_out:
                print(machine(theirs["versions"]))
                print(f"{len(NUMERICAL)} numerical and {len(CATEGORICAL)} categorical columns, declared on both sides; ours reads them as "
                      f"{ours['dtypes']}; report time only, median of up to {args.repeats} runs after a warm-up on 1,000 rows")
            found = mismatches(ours, theirs, args.tolerance)
            result = dict(rows=rows, ours=statistics.median(ours["times"]), theirs=statistics.median(theirs["times"]),
                          floor=statistics.median(ours["floor"]), runs=(len(ours["times"]), len(theirs["times"])), found=found,
                          drifted=sum(column["drift"] for column in ours["columns"].values()), dataset_drift=ours["dataset_drift"],
                          methods=sorted({column["method"] for column in ours["columns"].values()}))
            rows_out.append(result)
            print(f"{rows:,} rows: ours {result['ours']:.3f} s {[round(t, 3) for t in ours['times']]}, Evidently {result['theirs']:.2f} s "
                  f"{[round(t, 2) for t in theirs['times']]}, floor {result['floor']:.3f} s; {result['drifted']} of {len(ours['columns'])} "
                  f"columns drifted ({', '.join(result['methods'])}), dataset drift {result['dataset_drift']}; "
                  f"{'verdicts identical' if not found else f'{len(found)} mismatch(es)'}", flush=True)
            for line in found: print(f"  MISMATCH {line}")
    print()
    print("| rows | ours s | Evidently s | Evidently / ours | floor s | ours / floor | runs (ours, Evidently) | verdicts identical |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for result in rows_out:
        print(f"| {result['rows']:,} | {result['ours']:.3f} | {result['theirs']:.2f} | **{result['theirs'] / result['ours']:.1f}x** | "
              f"{result['floor']:.3f} | {result['ours'] / result['floor']:.1f}x | {result['runs'][0]}, {result['runs'][1]} | "
              f"{'yes' if not result['found'] else 'NO'} |")
    passed = []
    for result in rows_out:
        if result["rows"] not in TARGET_SIZES: continue
        ratio = result["theirs"] / result["ours"]
        passed.append(ratio >= TARGET)
        print(f"{result['rows']:,} rows: Evidently / ours {ratio:.1f}x (target >= {TARGET}x): {'PASS' if ratio >= TARGET else 'MISS'}")
    identical = all(not result["found"] for result in rows_out)
    print(f"verdicts: {'identical at every size' if identical else 'MISMATCH'}")
    if not passed: print("no target size (100,000 or 1,000,000 rows) measured")
    print("PASS" if passed and all(passed) and identical else "MISS")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="rows of reference and of current")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side and size; the median is kept (3)")
    parser.add_argument("--max-run", type=float, default=240, help="a side whose run takes longer than this (s) is not run again at that size (240)")
    parser.add_argument("--tolerance", type=float, default=1e-6, help="relative tolerance for scores (1e-6)")
    parser.add_argument("--evidently", metavar="NPZ", help=argparse.SUPPRESS) # internal: run Evidently's side on this data
    arguments = parser.parse_args()
    if arguments.evidently: run_evidently(arguments.evidently, arguments.repeats, arguments.max_run)
    else: main(arguments)
