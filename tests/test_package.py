"""mlops-kit is a real package: the wheel installs into a fresh environment and works outside the repository,
and importing the library stays light."""
import json, os, subprocess, sys, zipfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT, library_module_files

HEAVY_MODULES = ["optuna", "matplotlib", "fastapi", "pydantic", "uvicorn", "sklearn", "sqlalchemy"]


LIBRARY_MODULES = sorted(library_module_files())


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
    for path in library_module_files().values():
        assert path.relative_to(REPO_ROOT).as_posix() in names
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


PHASES = {  # the library by phase, as a reader looks for it: package -> its modules
    "mlops_kit.lifecycle": "metrics criteria decisions journal",
    "mlops_kit.data": "datasets case_study quality",
    "mlops_kit.design": "checklists added_value reports",
    "mlops_kit.development": "search_space storage grid analysis saving reference cards registry",
    "mlops_kit.deployment": "prediction_log protocol app server drift performance monitoring_loop",
    "mlops_kit.loop_back": "retraining",
    "mlops_kit.practice": "answer_store widgets grading capstone progress",
}
SHARED_MODULES = {"mlops_kit", "mlops_kit._toolbox", "mlops_kit.errors", "mlops_kit.cli", "mlops_kit.tour",
                  "mlops_kit.nbval_patience"}  # a pytest plugin for grading: at the top, so loading it imports nothing else


def test_the_library_is_laid_out_by_phase():
    "Each phase is a package of lesson-sized modules; nothing else sits at the top but the shared modules"
    expected = set(SHARED_MODULES) | set(PHASES) | {f"{package}.{module}" for package, modules in PHASES.items() for module in modules.split()}
    assert set(library_module_files()) == expected


@pytest.mark.parametrize("package", sorted(PHASES))
def test_a_phase_package_exposes_the_public_names_of_its_modules(package):
    import importlib
    phase = importlib.import_module(package)
    modules = [importlib.import_module(f"{package}.{name}") for name in PHASES[package].split()]
    assert sorted(phase.__all__) == sorted(name for module in modules for name in module.__all__)
    for module in modules:
        for name in module.__all__: assert getattr(phase, name) is getattr(module, name), f"{package}.{name}"


def _module_asts():
    import ast
    return {name: ast.parse(path.read_text()) for name, path in library_module_files().items()}


def _imported_names(module_name, tree):
    "(source module, name) for each `from X import name` of a library module, relative imports resolved"
    import ast
    package = module_name if library_module_files()[module_name].name == "__init__.py" else module_name.rpartition(".")[0]
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom): continue
        base = package
        for _ in range(node.level - 1): base = base.rpartition(".")[0]
        source = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
        for alias in node.names: yield source, alias.name


def test_no_module_imports_another_modules_private_names():
    "Shared helpers live in mlops_kit._toolbox under public names; a module's `_names` are its own"
    crossings = [f"{module} imports {source}.{name}" for module, tree in _module_asts().items()
                 for source, name in _imported_names(module, tree)
                 if source and source.startswith("mlops_kit") and name.startswith("_") and not name.startswith("__")]
    assert crossings == []



def test_each_module_has_one_all_the_generated_one():
    "nbdev writes `__all__` from the exported names; a second, hand-written list would hide what the first says"
    import ast
    for module in library_module_files().values():
        if module.parent.name == "mlops_kit" and module.name == "__init__.py": continue  # the version, no names
        assignments = [node for node in ast.parse(module.read_text()).body if isinstance(node, ast.Assign)
                       and any(isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets)]
        assert len(assignments) == 1, f"{module.name} assigns __all__ {len(assignments)} times"
        names = ast.literal_eval(assignments[0].value)
        assert all(not name.startswith("_") for name in names), f"{module.name} exports private names"
