"""Import time of each `mlops_kit` module, measured in fresh interpreters, next to its peers in the same run.

`import mlops_kit.<module>` should cost little more than `import pandas`, which every module needs: heavy
libraries (optuna, matplotlib, fastapi, scikit-learn estimators) are imported only when a function needs them.
Peers: `import pandas` (the floor for a pandas-based library) and `import sklearn` (what a careless top-level
import would add). Each figure is the median of --runs fresh interpreters; modules and peers are measured in
alternation, so that a noisy machine affects them alike.

    python bench/import_time.py [--runs 9]
"""
import argparse, os, platform, statistics, subprocess, sys
from pathlib import Path

PEERS = ["pandas", "sklearn"]


def library_modules() -> list[str]:
    "Every public module of the installed `mlops_kit` package"
    import mlops_kit
    package_folder = Path(mlops_kit.__file__).parent
    modules = ["mlops_kit"]
    for path in sorted(package_folder.rglob("[!_]*.py")) + sorted(package_folder.glob("*/__init__.py")):
        parts = path.relative_to(package_folder.parent).with_suffix("").parts
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(set(modules))


def import_seconds(module: str) -> float:
    "Seconds a fresh interpreter takes to import `module` (interpreter start-up excluded)"
    probe = f"import time; start = time.perf_counter(); import {module}; print(time.perf_counter() - start)"
    return float(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per module (default: 9)")
    runs = parser.parse_args().runs
    names = library_modules() + PEERS
    samples = {name: [] for name in names}
    for _ in range(runs):
        for name in names: samples[name].append(import_seconds(name))
    medians = {name: statistics.median(times) for name, times in samples.items()}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; median of {runs} runs")
    print(f"{'module':<26}{'import ms':>10}{'x pandas':>10}{'x sklearn':>11}")
    for name in names:
        print(f"{name:<26}{medians[name] * 1000:>10.1f}{medians[name] / medians['pandas']:>10.2f}"
              f"{medians[name] / medians['sklearn']:>11.2f}")


if __name__ == "__main__":
    main()
