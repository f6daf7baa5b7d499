"""The learner's copy of the course (`make lab`, `make update`, scripts/course_copy.py): a learner's work never changes
a file git tracks, and a course update never loses it. The Makefile's targets run for real, on a small course in git
repositories made here (an upstream and the learner's clone)."""
import json, shutil, subprocess, sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "course_copy.py"
COURSE = {"nbs/index.ipynb": "home v1", "nbs/course/01_lesson.ipynb": "lesson v1", "nbs/data/00_data.ipynb": "library v1",
          "exercises/01_lesson.ipynb": "exercise v1", "solutions/README.md": "how to grade", "solutions/01_lesson.ipynb": "the answers"}


def write_course(root: Path, files: dict):
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)


def course_copy(*arguments, check=True) -> subprocess.CompletedProcess:
    finished = subprocess.run([sys.executable, str(SCRIPT), *map(str, arguments)], capture_output=True, text=True)
    assert not check or finished.returncode == 0, finished.stderr
    return finished


def files_under(folder: Path) -> dict:
    return {str(path.relative_to(folder)): path.read_text() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_the_copy_holds_the_course_without_the_answers(tmp_path):
    source, copy = tmp_path / "kit", tmp_path / "my-course"
    write_course(source, COURSE)
    assert "Made your copy of the course" in course_copy("make", copy, "--source", source).stdout
    copied = files_under(copy)
    manifest = json.loads(copied.pop(".course-manifest.json"))
    assert copied == {key: text for key, text in COURSE.items() if key != "solutions/01_lesson.ipynb"}  # the worked answers stay out
    assert sorted(manifest) == sorted(copied)
    (copy / "nbs/course/01_lesson.ipynb").write_text("my notes")
    assert "Your copy of the course" in course_copy("make", copy, "--source", source).stdout  # a second `make lab` keeps it
    assert (copy / "nbs/course/01_lesson.ipynb").read_text() == "my notes"


def test_an_update_keeps_the_learners_work_and_brings_the_rest(tmp_path):
    source, copy = tmp_path / "kit", tmp_path / "my-course"
    write_course(source, COURSE)
    course_copy("make", copy, "--source", source)
    (copy / "nbs/course/01_lesson.ipynb").write_text("lesson v1 with my outputs")  # the learner's work
    (copy / "exercises/01_lesson.answers.json").write_text('{"q1": "b"}')
    (copy / "nbs/data/00_data.ipynb").write_text("library v1, my experiment")  # changed, but the course leaves it alone
    write_course(source, {"nbs/course/01_lesson.ipynb": "lesson v2", "exercises/01_lesson.ipynb": "exercise v2",
                          "nbs/course/02_lesson.ipynb": "new lesson", "nbs/index.ipynb": "home v1"})
    output = course_copy("update", copy, "--source", source).stdout
    assert output.startswith("1 file(s) updated, 1 added, 3 already up to date"), output
    assert "kept your changes to nbs/course/01_lesson.ipynb; the course's new version is beside it: nbs/course/01_lesson.updated.ipynb" in output
    mine = files_under(copy)
    assert mine["nbs/course/01_lesson.ipynb"] == "lesson v1 with my outputs" and mine["nbs/course/01_lesson.updated.ipynb"] == "lesson v2"
    assert mine["exercises/01_lesson.ipynb"] == "exercise v2" and mine["nbs/course/02_lesson.ipynb"] == "new lesson"
    assert mine["exercises/01_lesson.answers.json"] == '{"q1": "b"}' and mine["nbs/data/00_data.ipynb"] == "library v1, my experiment"
    (copy / "exercises/01_lesson.ipynb").write_text("exercise v2, answered")  # edits after the update count as the learner's
    write_course(source, {"exercises/01_lesson.ipynb": "exercise v3"})
    assert "kept your changes to exercises/01_lesson.ipynb" in course_copy("update", copy, "--source", source).stdout
    assert (copy / "exercises/01_lesson.ipynb").read_text() == "exercise v2, answered"


def test_an_update_removes_a_renamed_lesson_the_learner_never_changed_and_keeps_one_they_did(tmp_path):
    "A lesson split into parts: the old notebook leaves the copy unless it holds the learner's work, which is never lost"
    source, copy = tmp_path / "kit", tmp_path / "my-course"
    write_course(source, COURSE | {"nbs/course/02_lesson.ipynb": "lesson 2 v1"})
    course_copy("make", copy, "--source", source)
    (copy / "nbs/course/01_lesson.ipynb").write_text("lesson v1 with my outputs")
    for old in ["nbs/course/01_lesson.ipynb", "nbs/course/02_lesson.ipynb"]: (source / old).unlink()
    write_course(source, {"nbs/course/01a_lesson.ipynb": "part a", "nbs/course/02a_lesson.ipynb": "part a of 2"})
    output = course_copy("update", copy, "--source", source).stdout
    assert "removed 1 file(s) the course no longer has (you had not changed them)" in output, output
    assert "the course no longer has nbs/course/01_lesson.ipynb; you changed it, so it stays in your copy" in output, output
    mine = files_under(copy)
    assert "nbs/course/02_lesson.ipynb" not in mine and mine["nbs/course/01_lesson.ipynb"] == "lesson v1 with my outputs"
    assert mine["nbs/course/01a_lesson.ipynb"] == "part a" and mine["nbs/course/02a_lesson.ipynb"] == "part a of 2"
    manifest = json.loads(mine[".course-manifest.json"])
    assert "nbs/course/01_lesson.ipynb" not in manifest and "nbs/course/02_lesson.ipynb" not in manifest
    assert "no longer has" not in course_copy("update", copy, "--source", source).stdout  # said once


@pytest.mark.parametrize("case", ["a folder of other files", "inside the course", "no manifest"])
def test_the_script_refuses_what_is_not_a_copy_and_changes_nothing(tmp_path, case):
    source = tmp_path / "kit"
    write_course(source, COURSE)
    copy = {"a folder of other files": tmp_path / "thesis", "inside the course": source / "nbs" / "mine", "no manifest": tmp_path / "thesis"}[case]
    copy.mkdir(parents=True, exist_ok=True)
    (copy / "chapter.txt").write_text("my thesis")
    before = files_under(tmp_path)
    finished = course_copy("update" if case == "no manifest" else "make", copy, "--source", source, check=False)
    message = {"a folder of other files": "exists and is not a copy of the course", "inside the course": "cannot be the course itself or inside",
               "no manifest": "has no readable .course-manifest.json"}[case]
    assert finished.returncode != 0 and message in finished.stderr, finished.stderr
    assert files_under(tmp_path) == before


def git(folder: Path, *arguments) -> str:
    return subprocess.run(["git", "-C", str(folder), *arguments], capture_output=True, text=True, check=True).stdout


def make(folder: Path, *targets) -> str:
    "`make TARGETS` in `folder` with this test run's environment (`-o`: installed already)"
    venv = Path(sys.prefix)
    finished = subprocess.run(["make", "-o", f"{venv}/.installed", *targets, f"VENV={venv}"], cwd=folder, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout


@pytest.fixture
def upstream_and_clone(tmp_path):
    "A small course in a git repository with this checkout's Makefile, script and .gitignore; and a learner's clone of it"
    upstream = tmp_path / "upstream"
    write_course(upstream, COURSE)
    for name in ["Makefile", ".gitignore", "pyproject.toml", "scripts/course_copy.py"]:
        (upstream / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / name, upstream / name)
    git(tmp_path, "init", "-q", "-b", "main", str(upstream))
    git(upstream, "add", "-A")
    git(upstream, "-c", "user.name=Course", "-c", "user.email=course@example.org", "commit", "-q", "-m", "the course")
    git(tmp_path, "clone", "-q", str(upstream), str(tmp_path / "learner"))
    return upstream, tmp_path / "learner"


def test_make_course_then_work_leaves_git_status_clean_and_make_update_keeps_the_work(upstream_and_clone):
    upstream, learner = upstream_and_clone
    assert "Made your copy of the course in" in make(learner, "course")
    copy = learner / "my-course"
    (copy / "nbs/course/01_lesson.ipynb").write_text("lesson v1, run, with outputs")  # what saving a lesson in JupyterLab does
    (copy / "exercises/01_lesson.answers.json").write_text("{}")
    assert git(learner, "status", "--porcelain") == ""  # the learner's work changes no tracked file
    write_course(upstream, {"nbs/course/01_lesson.ipynb": "lesson v2", "exercises/01_lesson.ipynb": "exercise v2"})
    git(upstream, "-c", "user.name=Course", "-c", "user.email=course@example.org", "commit", "-q", "-am", "an update")
    output = make(learner, "update")
    assert "1 file(s) updated" in output and "kept your changes to nbs/course/01_lesson.ipynb" in output, output
    assert (learner / "nbs/course/01_lesson.ipynb").read_text() == "lesson v2"  # the pull went through: nothing was in its way
    assert (copy / "nbs/course/01_lesson.ipynb").read_text() == "lesson v1, run, with outputs"
    assert (copy / "nbs/course/01_lesson.updated.ipynb").read_text() == "lesson v2"
    assert (copy / "exercises/01_lesson.ipynb").read_text() == "exercise v2"
    assert git(learner, "status", "--porcelain") == ""
