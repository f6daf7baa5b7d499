"""The web version of the course (`make html`): every page is there, and everything a page points to resolves offline.

One test builds the course's site with the project's own Sphinx settings (docs/conf.py) into a temporary folder and
runs every check on it: every notebook's page in the menu in course order, every internal link, anchor and image, no
page loading anything from the network, the lessons' figures, nbdev's hidden cells, the search index. In that build the
course home, the lessons and the exercises are executed; the library notebooks are rendered from their code without
running them, since tests/test_notebooks.py runs each of them already (docs/README.md gives the cost of each choice).
A small project in a temporary folder shows the build's rules, and Chromium opens pages from the file system offline.
"""
import fcntl, json, os, re, shutil, subprocess, sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from conftest import REPO_ROOT

SPHINX_BUILD = str(Path(sys.executable).parent / "sphinx-build")
DOCS = REPO_ROOT / "docs"
BUILD_SECONDS = 1500
# Executed in the suite's build: the pages a learner reads first. The others are executed by `make html` only.
EXECUTED_IN_SUITE = ["nbs/index.ipynb", "nbs/course/*.ipynb", "exercises/*.ipynb"]


def sphinx_build(source: Path, output: Path, cache: Path, **environment) -> subprocess.CompletedProcess:
    "Build the site of `source` with docs/conf.py into `output`, warnings as errors, as `make html` does"
    install_widget_manager()
    env = {**os.environ, "MLOPS_KIT_SITE_CACHE": str(cache), **environment}
    command = [SPHINX_BUILD, "-b", "html", "-c", str(DOCS), "-W", "--keep-going", "-q", str(source), str(output)]
    return subprocess.run(command, cwd=source, env=env, capture_output=True, text=True, timeout=BUILD_SECONDS)


WIDGETS_STAMP = "docs/widgets/node_modules/.installed"


def install_widget_manager():
    "The widgets' manager installed as `make html` installs it: by npm, from docs/widgets' lock, once"
    with open(DOCS / "widgets" / "package-lock.json") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # the suite's workers wait for the one that installs it
        result = subprocess.run(["make", "-s", WIDGETS_STAMP], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        from conftest import skip_or_fail
        skip_or_fail(f"the widgets' manager is not installed: {(result.stdout + result.stderr).strip()[-600:]}")


# --- reading the built pages ---------------------------------------------------------------------------------------

class Page(HTMLParser):
    "What a built HTML page holds: its ids, what it links to or loads, and the code of its visible cells"
    LOADS = {"img": "src", "script": "src", "link": "href", "iframe": "src", "source": "src", "video": "src",
             "audio": "src", "embed": "src", "object": "data"}

    def __init__(self, path: Path):
        super().__init__()
        self.path, self.ids, self.links, self.loads, self.images, self.cell_inputs = path, set(), [], [], [], []
        self._cell_input_depth, self._in_code = None, False
        self._depth, self._text = 0, []
        self.feed(path.read_text(encoding="utf-8"))

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def handle_starttag(self, tag, attributes):
        attributes = dict(attributes)
        self._depth += tag not in self.VOID   # a void element has no end tag
        for name in ("id", "name") if tag == "a" else ("id",):
            if attributes.get(name): self.ids.add(attributes[name])
        if tag == "a" and attributes.get("href"): self.links.append(attributes["href"])
        if tag in self.LOADS and attributes.get(self.LOADS[tag]):
            self.loads.append((tag, attributes[self.LOADS[tag]]))
        if tag == "img": self.images.append(attributes.get("src", ""))
        if tag == "div" and "cell_input" in attributes.get("class", "").split() and self._cell_input_depth is None:
            self._cell_input_depth, self._text = self._depth, []

    def handle_endtag(self, tag):
        if self._cell_input_depth == self._depth:
            self.cell_inputs.append("".join(self._text))
            self._cell_input_depth = None
        self._depth -= 1

    def handle_startendtag(self, tag, attributes):
        self.handle_starttag(tag, attributes)
        self._depth -= tag not in self.VOID

    def handle_data(self, data):
        if self._cell_input_depth is not None: self._text.append(data)


def pages_of(site: Path) -> dict:
    "Every HTML page of the built `site` (not the theme's own files), read"
    return {path: Page(path) for path in sorted(site.rglob("*.html")) if "_static" not in path.relative_to(site).parts}


def is_remote(address: str) -> bool:
    "True for an address the browser would fetch from the network"
    return urlsplit(address).scheme in ("http", "https", "ftp", "ws", "wss") or address.startswith("//")


def broken_links(pages: dict, site: Path) -> list:
    "Every internal link, anchor or loaded file of `pages` that does not resolve inside `site`"
    broken, site, pages = [], site.resolve(), {path.resolve(): page for path, page in pages.items()}
    for path, page in pages.items():
        addresses = [("a", link) for link in page.links] + page.loads
        for tag, address in addresses:
            parts = urlsplit(address)
            if parts.scheme or address.startswith("//"): continue   # remote (checked apart), mailto:, data:
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            where = f"{path.relative_to(site)}: <{tag}> {address}"
            if site not in target.parents:
                broken.append(f"{where} (leaves the site)")
            elif not target.is_file():
                broken.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                target_page = pages.get(target) or Page(target)
                if unquote(parts.fragment) not in target_page.ids: broken.append(f"{where} (no such anchor)")
    return broken


def search_index(site: Path) -> dict:
    "Sphinx's search index of the built `site`, as the browser reads it from searchindex.js"
    text = (site / "searchindex.js").read_text(encoding="utf-8")
    return json.loads(text[text.index("(") + 1:text.rindex(")")])


def docs_found_by(site: Path, word: str) -> set:
    "The pages in which the site's own search finds `word` (stemmed as Sphinx's English search does)"
    from sphinx.search.en import SearchEnglish
    index = search_index(site)
    stem = SearchEnglish({}).stem(word.lower())
    found = set()
    for kind in ("terms", "titleterms"):   # a word of a heading is found too, under its own kind
        numbers = index[kind].get(stem, [])
        found |= {index["docnames"][number] for number in ([numbers] if isinstance(numbers, int) else numbers)}
    return found


def site_settings():
    "docs/conf.py, imported"
    sys.path.insert(0, str(DOCS))
    try:
        import conf
    finally:
        sys.path.remove(str(DOCS))
    return conf


def hidden_cells(notebook: Path) -> list:
    "The code of the `#| hide` cells of `notebook`, without their directive lines"
    split_directives = site_settings().split_directives
    cells = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        directives, code = split_directives(cell.source) if cell.cell_type == "code" else ([], "")
        if ("hide", "") in directives and code.strip(): cells.append(code)
    return cells


def normalised(code: str) -> str:
    return re.sub(r"\s+", " ", code).strip()


# --- the course's site ---------------------------------------------------------------------------------------------

def build_course_site(folder: Path, executed: list) -> Path:
    "The course's site, built from the repository into `folder` (the repository is not written to), `executed` run"
    result = sphinx_build(REPO_ROOT, folder / "html", folder / "jupyter_cache", MLOPS_KIT_SITE_EXECUTE=" ".join(executed))
    assert result.returncode == 0, f"the site's build failed:\n{result.stderr[-8000:]}\n{result.stdout[-2000:]}"
    return folder / "html"


def expected_pages() -> list:
    "The page each notebook of the course, the library and the exercises becomes"
    notebooks = [*(REPO_ROOT / "nbs").rglob("*.ipynb"), *(REPO_ROOT / "exercises").glob("*.ipynb")]
    return sorted(path.relative_to(REPO_ROOT).with_suffix(".html") for path in notebooks
                  if ".ipynb_checkpoints" not in path.parts)


def problems_with_pages(site: Path, pages: dict) -> list:
    "Notebooks without a page or missing from the menu; worked answers in a learner's site; no way in"
    home, problems = pages[site / "docs" / "index.html"], []
    problems += [f"{page}: no page for this notebook" for page in expected_pages() if not (site / page).is_file()]
    menu = {(site / "docs" / link).resolve().relative_to(site.resolve()) for link in home.links
            if link.endswith(".html") and not urlsplit(link).scheme}
    problems += [f"{page}: not in the menu" for page in expected_pages() if page not in menu]
    if (site / "solutions" / "01_the_lifecycle_practice.html").exists(): problems.append("the worked answers are for instructors only")
    if "url=docs/index.html" not in (site / "index.html").read_text(): problems.append("index.html does not open the site")
    return problems


def problems_with_order(site: Path, pages: dict) -> list:
    "The menu out of course order: home, lessons, exercises, then the library"
    order = [link for link in pages[site / "docs" / "index.html"].links if link.startswith("../")]
    last_lesson = sorted((REPO_ROOT / "nbs" / "course").glob("0*.ipynb"))[-1].stem
    names = ["nbs/index.html", "nbs/course/01_the_lifecycle.html", f"nbs/course/{last_lesson}.html",
             "exercises/01_the_lifecycle_practice.html", "nbs/lifecycle/00_lifecycle.html"]
    position = [next((i for i, link in enumerate(order) if link.endswith(name)), -1) for name in names]
    return [] if position == sorted(position) and -1 not in position else [f"the menu is out of course order: {position}"]


def remote_loads(site: Path, pages: dict) -> list:
    "What a page or a style sheet of the site would fetch from the network"
    remote = [f"{path.relative_to(site)}: <{tag}> {address}" for path, page in pages.items()
              for tag, address in page.loads if is_remote(address)]
    remote += [f"{path.relative_to(site)}: loads from the network" for path in (site / "_static").rglob("*.css")
               if re.search(r"(@import|url\()\s*['\"]?(https?:)?//", path.read_text(errors="replace"))]
    return remote


def lessons_without_figures(site: Path, pages: dict) -> list:
    "Lessons whose code draws a figure but whose page shows no image"
    missing = []
    for lesson in sorted((REPO_ROOT / "nbs" / "course").glob("*.ipynb")):
        code = "\n".join(cell.source for cell in nbformat.read(lesson, as_version=4).cells if cell.cell_type == "code")
        page = pages[site / "nbs" / "course" / f"{lesson.stem}.html"]
        if ("plt." in code or ".plot(" in code) and not any("_images/" in source for source in page.images):
            missing.append(f"{lesson.name} draws a figure, but its page shows none")
    return missing


def shown_hidden_cells(site: Path, pages: dict) -> tuple:
    "The `#| hide` cells of the library notebooks whose code is on their page, and how many were looked at"
    shown, checked = [], 0
    for notebook in sorted(path for path in (REPO_ROOT / "nbs").rglob("*.ipynb") if ".ipynb_checkpoints" not in path.parts):
        inputs = {normalised(code) for code in pages[site / notebook.relative_to(REPO_ROOT).with_suffix(".html")].cell_inputs}
        for code in hidden_cells(notebook):
            checked += 1
            if normalised(code) in inputs: shown.append(f"{notebook.name}: a `#| hide` cell is on its page: {code[:80]!r}")
    return shown, checked


def words_not_found(site: Path) -> list:
    "Words of a lesson that the site's search does not find on that lesson's page"
    expected = {"stakeholders": "nbs/course/01_the_lifecycle", "drift": "nbs/course/05a_input_drift"}
    return [f"searching '{word}' does not find {page}" for word, page in expected.items() if page not in docs_found_by(site, word)]


@pytest.mark.slow
def test_the_course_site_builds_and_every_page_link_anchor_and_image_resolves(tmp_path):
    "One build (a test of its own, so that the suite's workers never build it twice), every check on it"
    site = build_course_site(tmp_path, EXECUTED_IN_SUITE)
    pages = pages_of(site)
    shown, checked = shown_hidden_cells(site, pages)
    assert checked >= 5, "the library notebooks have `#| hide` cells: this test must look at them"
    problems = (problems_with_pages(site, pages) + problems_with_order(site, pages) + broken_links(pages, site)
                + remote_loads(site, pages) + lessons_without_figures(site, pages) + shown + words_not_found(site))
    assert not problems, f"{len(problems)} problem(s) with the site:\n" + "\n".join(problems[:60])
    lesson = pages[site / "nbs" / "course" / "01_the_lifecycle.html"]
    assert any(link.startswith("../../exercises/01_the_lifecycle_practice.html") for link in lesson.links), \
        "a link between notebooks becomes a link between pages"


# --- the build's rules, on a small project ---------------------------------------------------------------------------

SMALL_HOME = """# A small course

```{toctree}
:glob:

/nbs/*
/exercises/*
```
"""


def code_cell(source: str, **metadata):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata.update(metadata)
    return cell


def small_project(folder: Path) -> Path:
    "A course of two notebooks: a lesson with a hidden cell, a cell not to run and a section; an exercise whose check fails"
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "index.md").write_text(SMALL_HOME)
    lesson = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# The lesson\n\n## A section\n\nPractise in [the exercise](../exercises/practice.ipynb)."),
        code_cell("#| hide\nsecret_setup = 'hidden' + '-marker'"),
        code_cell("#| export\nprint(secret_setup.upper())"),
        code_cell("#| eval: false\nraise RuntimeError('nbdev-test does not run this cell, nor does the site')"),
    ])
    exercise = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# The exercise\n\nSee [the section](../nbs/lesson.ipynb#a-section)."),
        code_cell("raise AssertionError('not answered yet: pick an option')", mlops_kit={"role": "check"}),
    ])
    for path, notebook in [(folder / "nbs" / "lesson.ipynb", lesson), (folder / "exercises" / "practice.ipynb", exercise)]:
        path.parent.mkdir(exist_ok=True)
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, path)
    return folder


@pytest.mark.slow
def test_the_build_hides_nbdev_cells_and_shows_a_failed_check(tmp_path):
    project = small_project(tmp_path / "course")
    result = sphinx_build(project, tmp_path / "html", tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-4000:]
    lesson = (tmp_path / "html" / "nbs" / "lesson.html").read_text()
    assert "HIDDEN-MARKER" in lesson, "a hidden cell runs: the next cell uses what it defined"
    assert "secret_setup" in lesson and "&#39;hidden&#39;" not in lesson and "'hidden'" not in lesson, \
        "the hidden cell's code is not on the page"
    assert "#| export" not in lesson, "nbdev's directive lines are not on the page"
    exercise = (tmp_path / "html" / "exercises" / "practice.html").read_text()
    assert "not answered yet: pick an option" in exercise, "an exercise's failed check shows as it does for a learner"
    assert not broken_links(pages_of(tmp_path / "html"), tmp_path / "html"), "links and their anchors resolve"


def test_a_change_to_the_library_runs_the_notebooks_again(tmp_path):
    "The execution cache has a folder per version of the library: outputs never come from an older library"
    settings = site_settings()
    module = tmp_path / "lifecycle" / "criteria.py"
    module.parent.mkdir()
    module.write_text("THRESHOLD = 0.8\n")
    before = settings.library_fingerprint(tmp_path)
    assert settings.library_fingerprint(tmp_path) == before, "the same code, the same folder"
    module.write_text("THRESHOLD = 0.9\n")
    changed = settings.library_fingerprint(tmp_path)
    assert changed != before, "a change of the library's code gives a new folder"
    module.rename(tmp_path / "criteria.py")
    assert settings.library_fingerprint(tmp_path) != changed, "so does moving a module"
    assert settings.nb_execution_cache_path.endswith(settings.library_fingerprint(REPO_ROOT / "mlops_kit"))


@pytest.mark.slow
def test_a_notebook_that_raises_fails_the_build(tmp_path):
    project = small_project(tmp_path / "course")
    broken = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Broken"),
                                             code_cell("raise ValueError('this lesson is broken')")])
    broken.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(broken, project / "nbs" / "broken.ipynb")
    result = sphinx_build(project, tmp_path / "html", tmp_path / "cache")
    assert result.returncode != 0, "a notebook that raises must fail the build"
    assert "broken" in result.stderr and "this lesson is broken" in result.stderr, result.stderr[-3000:]


# --- in a browser, from the file system, with the network off ---------------------------------------------------------

@pytest.fixture
def offline_page(chromium_executable):
    "A page of Debian's headless Chromium that can open file:// addresses and nothing else; it lists what it refused"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        from conftest import skip_or_fail
        skip_or_fail("the `playwright` Python package is not installed: `pip install -e '.[dev]'`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
            refused = []
            def only_files(route):
                if route.request.url.startswith("file://"): return route.continue_()
                refused.append(route.request.url)
                return route.abort()
            context.route("**/*", only_files)
            page = context.new_page()
            page.refused = refused
            yield page
        finally:
            browser.close()


@pytest.mark.slow
@pytest.mark.service("chromium")
def test_a_lesson_and_the_search_open_offline_in_a_browser(offline_page, tmp_path):
    "A site of its own, with only the first lesson executed: this test runs beside the one above, not after it"
    site, page = build_course_site(tmp_path, ["nbs/course/01_the_lifecycle.ipynb"]), offline_page
    page.goto((site / "index.html").as_uri())   # the build folder's index.html opens the site's first page
    page.wait_for_url("**/docs/index.html", timeout=30_000)
    page.goto((site / "nbs" / "course" / "01_the_lifecycle.html").as_uri())
    figure = page.locator(".cell_output img").first
    figure.wait_for(timeout=30_000)
    assert page.evaluate("(image) => image.complete && image.naturalWidth > 0", figure.element_handle()), \
        "the lesson's figure is drawn"
    page.goto((site / "search.html").as_uri() + "?q=stakeholders")
    found = page.locator('#search-results li a[href*="nbs/course/01_the_lifecycle.html"]')   # results come one by one
    found.first.wait_for(timeout=30_000)
    assert "The lifecycle" in found.first.inner_text()
    assert not page.refused, f"pages asked for the network: {page.refused}"


@pytest.mark.slow
def test_a_link_to_a_missing_section_fails_the_build(tmp_path):
    project = small_project(tmp_path / "course")
    exercise = nbformat.read(project / "exercises" / "practice.ipynb", as_version=4)
    exercise.cells[0].source = exercise.cells[0].source.replace("#a-section", "#no-such-section")
    nbformat.write(exercise, project / "exercises" / "practice.ipynb")
    result = sphinx_build(project, tmp_path / "html", tmp_path / "cache", MLOPS_KIT_SITE_EXECUTION="off")
    assert result.returncode != 0 and "no-such-section" in result.stderr, result.stderr[-3000:]


# --- the widgets, drawn on a page from their saved state by the manager, a file of the site ---------------------------

WIDGET_EXERCISE = "exercises/01_the_lifecycle_practice"


def saved_widget_state(html: str) -> dict:
    "The widget state a built page holds, from its `application/vnd.jupyter.widget-state+json` script"
    found = re.search(r'<script type="application/vnd\.jupyter\.widget-state\+json">(.*?)</script>', html, re.S)
    return json.loads(found[1])["state"] if found else {}


def cached_widget_states(cache: Path) -> list:
    "The widget states of the notebooks in the execution cache under `cache` (what a later build puts on a page)"
    from jupyter_cache import get_cache
    folder = next(path for path in cache.iterdir() if path.is_dir())   # the folder of this version of the library
    cache = get_cache(folder)
    return [cache.get_cache_bundle(record.pk).nb.metadata.get("widgets", {}) for record in cache.list_cache_records()]


def test_without_npm_make_html_says_to_install_node(tmp_path):
    "No npm: `make html` stops at its first step with one line that says what to install, not a stack trace"
    make = shutil.which("make")
    if make is None: pytest.skip("no `make` on this machine")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "id").symlink_to(shutil.which("id"))   # the Makefile asks `id`; npm is not on this PATH
    result = subprocess.run([make, "-s", "-W", "docs/widgets/package-lock.json", WIDGETS_STAMP], cwd=REPO_ROOT,
                            env={"PATH": str(tmp_path / "bin")}, capture_output=True, text=True, timeout=60)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0 and "install Node.js (Debian: apt install nodejs npm)" in lines[0], lines
    assert len([line for line in lines if not line.startswith("make: ")]) == 1, lines   # and make's own "Error 1"


@pytest.mark.slow
@pytest.mark.service("chromium")
def test_a_widget_is_drawn_offline_from_its_saved_state(offline_page, tmp_path):
    "An exercise's page draws its questions from the state saved when it ran, with the site's own manager, offline"
    site, page = build_course_site(tmp_path, [f"{WIDGET_EXERCISE}.ipynb"]), offline_page
    html = (site / f"{WIDGET_EXERCISE}.html").read_text(encoding="utf-8")
    state = saved_widget_state(html)
    assert any(model["model_name"] == "RadioButtonsModel" for model in state.values()), "the page holds its widgets' state"
    assert any(widgets.get("application/vnd.jupyter.widget-state+json", {}).get("state")
               for widgets in cached_widget_states(tmp_path / "jupyter_cache")), "the execution cache keeps it for the next build"
    assert (site / "_static" / "widgets" / "embed.js").is_file() and '_static/widgets/embed.js"' in html, \
        "the manager is a file of the site"
    views = html.count('type="application/vnd.jupyter.widget-view+json"')
    assert views and html.count('class="widget-text-form') == views, "every widget keeps its text form"
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("requestfailed", lambda request: errors.append(f"could not load {request.url}")
            if request.url.startswith("file://") else None)   # a font or a file of the manager missing from the site
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" and "widgets/" in message.location.get("url", "") else None)
    page.goto((site / f"{WIDGET_EXERCISE}.html").as_uri())
    choices = page.locator(".widget-radio-box input[type=radio]")
    choices.first.wait_for(state="visible", timeout=30_000)
    assert choices.count() >= 2 and page.locator(".widget-subarea").count() == views, "every widget is drawn"
    text_forms = page.locator(".widget-text-form")
    assert not any(text_forms.nth(number).is_visible() for number in range(text_forms.count())), \
        "a drawn widget hides its text form"
    note = page.evaluate("""() => getComputedStyle(document.querySelector('.widget-hbox:has(> .mlops-kit-hint)'), '::after').content""")
    assert "need a running notebook" in note, "the page says that Check and Hint need a kernel"
    page.evaluate("() => document.querySelector('.widget-subarea').remove()")   # as if the view could not be drawn
    assert text_forms.first.is_visible(), "where a widget is not drawn, its text form shows"
    assert not errors, f"the widgets failed on the page: {errors}"
    assert not page.refused, f"the page asked for the network: {page.refused}"
