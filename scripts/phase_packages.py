"""Write each phase package's `__init__` notebook, `nbs/<phase>/00_<phase>.ipynb`, from its modules' generated `__all__`.

A phase package (`mlops_kit.deployment`, ...) hands on the public names of its modules, so that a notebook imports
`from mlops_kit.deployment import create_app`. `make export` runs this between two `nbdev-export` runs: the first
writes the modules, this writes the package notebooks from their `__all__`, the second exports those. A name defined
by two modules of one phase is refused. Run it by hand as `python scripts/phase_packages.py [REPO]`."""
import ast, re, sys, uuid
from pathlib import Path
import nbformat
ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent); NBS = ROOT / "nbs"
PHASES = {
    "lifecycle": ("The lifecycle", "What every phase shares: the task and its metrics, success criteria, go / iterate / stop decisions, and the project journal that records them."),
    "data": ("Data", "Datasets that know their task, the churn case study and real datasets for each task, and the checks of data quality that the design phase runs."),
    "design": ("Design", "Is the project worth doing? Phase checklists and gates, whether a model adds value over a simple rule, and reports of both."),
    "development": ("Development", "Experiments over data variants, algorithms and hyperparameters, their analysis, and the registry where a chosen model is kept."),
    "deployment": ("Deployment", "The model as a microservice that logs every prediction, and the monitoring of its inputs, outputs and performance."),
    "loop_back": ("The loop back", "When monitoring says so: retrain, compare the challenger with the champion, and promote only a better model."),
    "practice": ("Practice", "The exercises' widgets and answer store, and the grading and validation of exercise notebooks."),
}
def module_all(path):
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "__all__": return ast.literal_eval(node.value)
    return []
def default_exp(nb_path):
    nb = nbformat.read(nb_path, 4)
    for cell in nb.cells:
        m = re.match(r"#\| default_exp (\S+)", cell.source) if cell.cell_type == "code" else None
        if m: return m.group(1)
def wrapped(names, indent, quote=True):
    lines, line = [], ""
    for name in names:
        piece = (repr(name) if quote else name) + ", "
        if len(line) + len(piece) > 100 - indent: lines.append(line.rstrip()); line = ""
        line += piece
    lines.append(line.rstrip().rstrip(","))
    return ("\n" + " " * indent).join(lines)
for phase, (title, summary) in PHASES.items():
    folder = NBS / phase
    if not folder.is_dir(): continue
    modules = []
    for nb_path in sorted(folder.glob("[!_]*.ipynb")):
        name = default_exp(nb_path)
        if name and name != f"{phase}.__init__": modules.append((nb_path, name))
    if not modules: continue
    cells = [nbformat.v4.new_code_cell(f"#| default_exp {phase}.__init__"),
             nbformat.v4.new_markdown_cell(f"# {title}\n\n> {summary}\n\nThe package gathers the public names of its modules, so that a notebook imports them "
                                           f"from the phase: `from mlops_kit.{phase} import ...`. Its modules, in the order of their lessons:\n\n" +
                                           "\n".join(f"- [`mlops_kit.{name}`]({nb.name})" for nb, name in modules))]
    every = []
    for nb_path, name in modules:
        names = module_all(ROOT / "mlops_kit" / (name.replace(".", "/") + ".py"))
        if not names: continue
        clash = set(names) & set(every)
        if clash: sys.exit(f"{phase}: {sorted(clash)} defined by two modules")
        every += names
        cells.append(nbformat.v4.new_code_cell(f"#| export\nfrom mlops_kit.{name} import ({wrapped(names, 4, quote=False)})"))
    cells.append(nbformat.v4.new_code_cell(f"#| export\n_all_ = [{wrapped(every, 8)}]"))
    lazy = [name for _, name in modules if "\ndef __getattr__(" in (ROOT / "mlops_kit" / (name.replace(".", "/") + ".py")).read_text()]
    for name in lazy:
        short = name.rpartition(".")[2]
        cells.append(nbformat.v4.new_markdown_cell(f"`mlops_kit.{name}` makes some names on first use (PEP 562), so that importing it stays light; the package hands them on:"))
        cells.append(nbformat.v4.new_code_cell(f"#| export\nfrom mlops_kit.{phase} import {short} as _{short}\n\ndef __getattr__(name):\n"
                                               f"    \"Names that `mlops_kit.{name}` makes on first use\"\n    return getattr(_{short}, name)"))
    cells.append(nbformat.v4.new_markdown_cell(f"Every public name of the phase's modules is a name of the package, and nothing else is:"))
    imports = "\n".join(f"import mlops_kit.{name}" for _, name in modules)
    cells.append(nbformat.v4.new_code_cell(
        f"import mlops_kit.{phase} as package\n{imports}\n"
        f"modules = [{', '.join(f'mlops_kit.{name}' for _, name in modules)}]\n"
        "assert sorted(package.__all__) == sorted(name for module in modules for name in module.__all__)\n"
        "assert all(getattr(package, name) is getattr(module, name) for module in modules for name in module.__all__)"))
    nb = nbformat.v4.new_notebook(); nb.cells = cells
    nb.metadata = nbformat.read(NBS / "00_errors.ipynb", 4).metadata
    target = folder / f"00_{phase}.ipynb"
    before = target.read_text() if target.exists() else ""
    if target.exists():  # keep cell ids stable
        old = nbformat.read(target, 4)
        for new, previous in zip(nb.cells, old.cells): new.id = previous.id
    for cell in nb.cells:
        if "id" not in cell or not cell.id: cell.id = uuid.uuid4().hex[:8]
    nbformat.write(nb, target)
    if target.read_text() != before: print("wrote", target.relative_to(ROOT), len(every), "names")
