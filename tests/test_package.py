"""mlops-kit is a real package: the wheel installs into a fresh environment and works outside the repository,
and importing the library stays light."""
import json, os, subprocess, sys, zipfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT

HEAVY_MODULES = ["optuna", "matplotlib", "fastapi", "pydantic", "uvicorn", "sklearn"]


LIBRARY_MODULES = ["mlops_kit"] + [f"mlops_kit.{path.stem}" for path in sorted((REPO_ROOT / "mlops_kit").glob("[!_]*.py"))]


@pytest.mark.parametrize("module", LIBRARY_MODULES)
def test_importing_a_module_leaves_heavy_libraries_unloaded(module):
    "Heavy libraries are imported by the functions that need them, so `import mlops_kit.<module>` stays fast"
    probe = f"import sys, json, {module}; print(json.dumps(sorted({{name.split('.')[0] for name in sys.modules}} & {set(HEAVY_MODULES)!r})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == [], f"`import {module}` loaded {result.stdout.strip()}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    "The wheel that `python -m build` makes from this checkout"
    outdir = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(outdir), str(REPO_ROOT)],
                   check=True, capture_output=True, text=True, timeout=600)
    (wheel_path,) = outdir.glob("mlops_kit-*.whl")
    return wheel_path


def test_wheel_holds_the_generated_library_and_its_command(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for module in ["__init__", "_modidx", "lifecycle", "data", "checklists", "experiments", "registry", "serving", "cli"]:
        assert f"mlops_kit/{module}.py" in names
    assert not [name for name in names if name.startswith(("nbs/", "tests/", "bench/"))]
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "mlops-kit = mlops_kit.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


SMOKE_TEST = '''
import mlops_kit, pathlib, sys
from mlops_kit.data import load_case_study, infer_schema, screen_leakage
from mlops_kit.lifecycle import Criterion
assert "site-packages" in mlops_kit.__file__, mlops_kit.__file__
case_study = load_case_study(seed=7)
clean = case_study.clean_sample(2_000, seed=0)
assert infer_schema(clean).validate(case_study.clean_sample(1_000, seed=1)).empty
assert len(case_study.ground_truth) >= 5
print("ok", len(case_study.frame))
'''


@pytest.mark.slow
def test_wheel_installs_and_runs_in_a_fresh_environment_outside_the_repository(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    environment = {name: value for name, value in os.environ.items() if name not in {"PYTHONPATH", "VIRTUAL_ENV"}}

    def run(*command):
        return subprocess.run(command, cwd=outside, env=environment, capture_output=True, text=True, timeout=300)

    version = run(str(venv / "bin" / "mlops-kit"), "--version")
    assert version.returncode == 0 and version.stdout.strip().startswith("mlops-kit "), version.stderr
    smoke = run(str(venv / "bin" / "python"), "-c", SMOKE_TEST)
    assert smoke.returncode == 0 and smoke.stdout.startswith("ok"), smoke.stderr[-3000:]
    written = run(str(venv / "bin" / "mlops-kit"), "case-study", "churn.csv", "--ground-truth", "planted.csv")
    assert written.returncode == 0, written.stderr
    assert (outside / "churn.csv").stat().st_size > 1_000_000 and (outside / "planted.csv").exists()
    toured = run(str(venv / "bin" / "mlops-kit"), "tour", "--output", "tour", "--trials", "4")
    assert toured.returncode == 0, toured.stdout[-2000:] + toured.stderr[-3000:]
    assert "loop back" in toured.stdout and (outside / "tour" / "report.md").exists() and (outside / "tour" / "drift.png").exists()


def test_each_module_has_one_all_the_generated_one():
    "nbdev writes `__all__` from the exported names; a second, hand-written list would hide what the first says"
    import ast
    for module in sorted((REPO_ROOT / "mlops_kit").glob("[!_]*.py")):
        assignments = [node for node in ast.parse(module.read_text()).body if isinstance(node, ast.Assign)
                       and any(isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets)]
        assert len(assignments) == 1, f"{module.name} assigns __all__ {len(assignments)} times"
        names = ast.literal_eval(assignments[0].value)
        assert all(not name.startswith("_") for name in names), f"{module.name} exports private names"
