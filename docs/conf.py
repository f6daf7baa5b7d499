"""Sphinx settings for the web version of the course: `make html` (see docs/README.md).

The site is built from the repository's root, so that the links between notebooks (`../exercises/...` from the course
home, `../../exercises/...` from a lesson) stay the links between pages. Only the pages named in `include_patterns`
are read; nothing is fetched from the network, at build time or when a page is opened.
"""
import hashlib, json, os, re, shutil
from pathlib import Path

from docutils import nodes

project = "mlops-kit"
author = "mlops-kit maintainers"
copyright = "mlops-kit maintainers"

# The instructor's version adds the worked answers: `make html SOLUTIONS=1`.
WITH_SOLUTIONS = os.environ.get("MLOPS_KIT_SITE_SOLUTIONS", "") not in ("", "0")

extensions = ["myst_nb", "sphinx-mathjax-offline"]   # MathJax from the installed package, not a CDN
root_doc = "docs/index"
include_patterns = ["docs/index.md", "nbs/*.ipynb", "nbs/*/*.ipynb", "exercises/*.ipynb",
                    "solutions/README.md", "solutions/00_template.ipynb"]   # the instructors' guide and its template
if WITH_SOLUTIONS:
    include_patterns += ["solutions/0[1-9]*.ipynb"]
exclude_patterns = [".venv", "**/node_modules", "**/.ipynb_checkpoints", "**/.ipynb_checkpoints/*", "build", "_docs", "_proc"]
templates_path = []
html_extra_path = ["extra"]     # the build folder's index.html, which opens the site's first page

# --- the notebooks: executed at build time, an error fails the build ---------------------------------------------
REPOSITORY = Path(__file__).resolve().parent.parent


def library_fingerprint(library=REPOSITORY / "mlops_kit") -> str:
    "A hash of the library's code: a page's outputs depend on it as much as on its notebook's own code"
    digest = hashlib.sha256()
    for path in sorted(library.rglob("*.py")):
        digest.update(path.relative_to(library).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


# A notebook is executed again when its code changes (myst-nb's cache is keyed by it) or the library's code does (the
# cache has a folder per version of the library, and a new folder makes Sphinx read every page again).
nb_execution_mode = os.environ.get("MLOPS_KIT_SITE_EXECUTION", "cache")   # "off" only for a quick look at the layout
nb_execution_cache_path = str(Path(os.environ.get("MLOPS_KIT_SITE_CACHE", REPOSITORY / "build" / "jupyter_cache"))
                              / library_fingerprint())
nb_execution_timeout = 600            # as nbdev's cell_timeout
nb_execution_raise_on_error = True    # a notebook that raises fails the build...
nb_execution_show_tb = True           # ...with its traceback in the log
nb_execution_in_temp = True           # each runs in a fresh folder, so a learner's saved answers never reach the site
nb_merge_streams = True
nb_ipywidgets_js = {"widgets/embed.js": {}}   # the widgets' manager, a file of the site (see "the widgets" below)
myst_heading_anchors = 4              # `lesson.ipynb#a-section` links resolve to the section
myst_enable_extensions = ["dollarmath"]
suppress_warnings = ["myst.header",   # nbdev titles are `# Title` then `> summary`, and lessons may skip a level
                    "misc.highlighting_failure"]  # a failed check prints a short message (no traceback), which the traceback lexer cannot colour

# --- the theme: every asset is in the installed packages ----------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "mlops-kit: the course"
html_theme_options = {"home_page_in_toc": True, "show_navbar_depth": 1, "use_download_button": False,
                      "use_fullscreen_button": False, "navigation_with_keys": False}
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
html_search_language = "en"


# --- nbdev's cell directives, read at build time (the notebooks stay as they are) ---------------------------------
DIRECTIVE = re.compile(r"^\s*#\s*\|\s*(?P<name>[\w-]+)\s*:?\s*(?P<value>.*)$")
TAGS_FOR = {("hide", ""): "remove-cell", ("echo", "false"): "remove-input", ("output", "false"): "remove-output",
            ("eval", "false"): "skip-execution", ("notest", ""): "skip-execution"}   # what nbdev-test does not run either


def split_directives(source: str) -> tuple:
    "The `#| name value` directives at the top of a code cell's `source`, as (name, value) pairs, and the code after them"
    lines, directives = source.splitlines(keepends=True), []
    while lines and (match := DIRECTIVE.match(lines[0])):
        directives.append((match["name"].lower(), match["value"].strip().lower()))
        lines.pop(0)
    return directives, "".join(lines)


def tags_for(directives: list, role: str, folder: str) -> list:
    "The myst-nb tags of a code cell with nbdev `directives` and exercise `role`, in a notebook of `folder`"
    tags = [TAGS_FOR[directive] for directive in directives if directive in TAGS_FOR]
    if folder == "exercises" and role == "check":
        tags.append("raises-exception")   # an unanswered exercise fails its check, as it does for a learner
    return tags


def prepare_cell(cell: dict, folder: str):
    "Tag a code `cell` as its nbdev directives and exercise role say, and drop the directive lines from its code"
    directives, code = split_directives("".join(cell["source"]))
    role = cell["metadata"].get("mlops_kit", {}).get("role")
    tags = cell["metadata"].get("tags", [])
    cell["metadata"]["tags"] = tags + [tag for tag in tags_for(directives, role, folder) if tag not in tags]
    cell["source"] = code


SOLUTIONS_TOCTREE = "\n```{toctree}\n:caption: Worked answers (for instructors)\n:maxdepth: 1\n:glob:\n\n/solutions/0[1-9]*\n```\n"


def read_source(app, docname, source):
    "Sphinx's source-read hook: a notebook's cells prepared for its page; the worked answers in the menu if asked for"
    if docname == root_doc and WITH_SOLUTIONS: source[0] += SOLUTIONS_TOCTREE
    if not str(app.env.doc2path(docname)).endswith(".ipynb"): return
    notebook = json.loads(source[0])
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code": prepare_cell(cell, folder=docname.split("/")[0])
    source[0] = json.dumps(notebook)


def execute_only(app, config):
    "With MLOPS_KIT_SITE_EXECUTE (globs from the source folder) set, the other pages are rendered from unexecuted code"
    patterns = os.environ.get("MLOPS_KIT_SITE_EXECUTE", "").split()
    if not patterns: return
    source = Path(app.srcdir)
    executed = {path for pattern in patterns for path in source.glob(pattern)}
    pages = {path for pattern in config.include_patterns if pattern.endswith(".ipynb") for path in source.glob(pattern)}
    config.nb_execution_excludepatterns = sorted(path.as_posix() for path in pages - executed)


# --- the widgets: drawn from the state saved when the notebook ran, by the ipywidgets HTML manager, a file of the site ----
# The manager comes from its npm package, pinned in docs/widgets (`make html` runs `npm ci` there). Its non-AMD bundle,
# embed.js, holds the modules of the standard widgets (@jupyter-widgets/base, controls, output) and has no loader for
# other modules, so it never asks a CDN for one; the icon fonts its style sheet names are copied beside it (in the formats
# browsers of this decade read; a browser skips a format it cannot read without asking for it: .eot and .svg were for old
# Internet Explorer and iOS).
WIDGET_MANAGER = REPOSITORY / "docs" / "widgets" / "node_modules" / "@jupyter-widgets" / "html-manager" / "dist"
WIDGET_FILES = ["embed.js", "embed.js.LICENSE.txt", "*.woff2", "*.woff", "*.ttf"]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
html_css_files = ["widgets/widgets.css"]   # the text form hidden once a widget is drawn; Check and Hint need a kernel


def require_widget_manager(app):
    "Stop the build at its start, in one line, if the widgets' manager is not installed"
    from sphinx.errors import ConfigError
    if app.builder.format == "html" and not (WIDGET_MANAGER / "embed.js").is_file():
        raise ConfigError("the widgets' manager is not installed: run `make html` (it runs `npm ci` in docs/widgets), "
                          "which needs Node.js (Debian: apt install nodejs npm)")


def copy_widget_manager(app, exception):
    "Copy the widgets' manager and its fonts into the site's `_static/widgets`, where `nb_ipywidgets_js` points"
    if exception or app.builder.format != "html": return
    folder = Path(app.outdir) / "_static" / "widgets"
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted({path for pattern in WIDGET_FILES for path in WIDGET_MANAGER.glob(pattern)}):
        shutil.copyfile(path, folder / path.name)
    shutil.copyfile(REPOSITORY / "docs" / "widgets" / "widgets.css", folder / "widgets.css")


def keep_widget_text(app, doctree):
    "Put a widget's text form before its view: the page shows it until the manager draws the widget, and where it cannot"
    for bundle in doctree.findall(lambda node: isinstance(node, nodes.container) and node.get("nb_element") == "mime_bundle"):
        forms = {form["mime_type"]: form for form in bundle.children}
        if WIDGET_VIEW not in forms or "text/plain" not in forms: continue
        text_form = nodes.container(classes=["widget-text-form"])
        text_form.extend(child.deepcopy() for child in forms["text/plain"].children)
        forms[WIDGET_VIEW].insert(0, text_form)   # myst-nb then keeps the view, the one form a page shows


def setup(app):
    app.connect("config-inited", execute_only)
    app.connect("builder-inited", require_widget_manager)
    app.connect("build-finished", copy_widget_manager)
    app.connect("doctree-read", keep_widget_text)      # before myst-nb keeps one form of each output
    app.connect("source-read", read_source)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
