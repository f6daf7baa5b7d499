"""The answer store of the practice notebooks (`mlops_kit.exercises.AnswerStore`): answers survive a kernel restart,
concurrent writers lose nothing, a failed write leaves the previous answers intact, and a broken file is reported and
kept, never reset. Answer files are the learner's: git ignores them."""
import subprocess, sys

import pytest

from conftest import REPO_ROOT
from mlops_kit.exercises import AnswerStore, AnswerStoreError

WRITER = """
import sys
from mlops_kit.exercises import AnswerStore
store = AnswerStore(sys.argv[1])
for number in range(int(sys.argv[3])): store.set(f"{sys.argv[2]}-{number}", number)
"""


def test_answers_survive_a_kernel_restart(tmp_path):
    "One process saves (the kernel before the restart); a new one reads them back"
    path = tmp_path / "lesson.answers.json"
    subprocess.run([sys.executable, "-c", WRITER, str(path), "quiz", "3"], check=True)
    assert AnswerStore(path).all() == {"quiz-0": 0, "quiz-1": 1, "quiz-2": 2}


def test_two_kernels_writing_at_once_lose_no_answer(tmp_path):
    path = tmp_path / "shared.answers.json"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "40"]) for name in ("left", "right")]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    assert len(AnswerStore(path).all()) == 80


def test_a_failed_write_leaves_the_previous_answers(tmp_path, monkeypatch):
    store = AnswerStore(tmp_path / "lesson.answers.json")
    store.set("first", "kept")
    before = store.path.read_bytes()
    def disk_full(*arguments): raise OSError(28, "No space left on device")
    monkeypatch.setattr("mlops_kit.exercises.os.replace", disk_full)
    with pytest.raises(OSError):
        store.set("second", "lost")
    assert store.path.read_bytes() == before
    assert [path.name for path in tmp_path.iterdir() if path.suffix == ".tmp"] == [], "the temporary file must be removed"


@pytest.mark.parametrize("content, message", [("{not json", "cannot be read"), ('{"answers": {}}', "not an mlops-kit answer file"),
                                              ("[1, 2]", "not an mlops-kit answer file")])
def test_a_broken_answer_file_is_reported_and_kept(tmp_path, content, message):
    path = tmp_path / "lesson.answers.json"
    path.write_text(content)
    with pytest.raises(AnswerStoreError, match=message):
        AnswerStore(path)
    assert path.read_text() == content


@pytest.mark.parametrize("exercise, answer, message", [("", 1, "non-empty"), ("q", float("inf"), "cannot be saved"),
                                                       ("q", object(), "cannot be saved"), ("q", {1, 2}, "cannot be saved")])
def test_bad_answers_are_refused_and_nothing_is_written(tmp_path, exercise, answer, message):
    store = AnswerStore(tmp_path / "lesson.answers.json")
    with pytest.raises(AnswerStoreError, match=message):
        store.set(exercise, answer)
    assert not store.path.exists()


def test_an_answer_file_must_be_json_and_git_ignores_answer_files(tmp_path):
    with pytest.raises(AnswerStoreError, match="ends in .json"):
        AnswerStore(tmp_path / "answers.txt")
    ignored = subprocess.run(["git", "check-ignore", "-q", "exercises/01_the_lifecycle.answers.json"], cwd=REPO_ROOT)
    assert ignored.returncode == 0, "answer files must be ignored by git"
