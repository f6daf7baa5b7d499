"""The answer store of the practice notebooks (`mlops_kit.practice.AnswerStore`): answers survive a kernel restart,
concurrent writers lose nothing, a failed write leaves the previous answers intact, and a broken file is reported and
kept, never reset. Answer files are the learner's: git ignores them."""
import hashlib, subprocess, sys

import pytest

from conftest import REPO_ROOT
from mlops_kit.practice import AnswerStore, AnswerStoreError

WRITER = """
import sys
from mlops_kit.practice import AnswerStore
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
    monkeypatch.setattr("mlops_kit._toolbox.os.replace", disk_full)
    with pytest.raises(OSError):
        store.set("second", "lost")
    assert store.path.read_bytes() == before
    assert [path.name for path in tmp_path.iterdir() if path.suffix == ".tmp"] == [], "the temporary file must be removed"


DEEP = "[" * 100_000 + "]" * 100_000
HUGE_NUMBER = '{"format": "mlops-kit answers", "answers": {"q": ' + "9" * 5000 + "}}"


@pytest.mark.parametrize("content, message", [(b"{not json", "cannot be read"), (b'{"answers": {}}', "not an mlops-kit answer file"),
                                              (b"[1, 2]", "not an mlops-kit answer file"), (b"\xff\xfe{}", "cannot be read"),
                                              (DEEP.encode(), "cannot be read"), (HUGE_NUMBER.encode(), "cannot be read"),
                                              (b'{"format": "mlops-kit answers", "answers": []}', "not an mlops-kit answer file")])
def test_a_broken_answer_file_is_reported_and_kept(tmp_path, content, message):
    path = tmp_path / "lesson.answers.json"
    path.write_bytes(content)
    with pytest.raises(AnswerStoreError, match=message):
        AnswerStore(path)
    assert sha256(path) == hashlib.sha256(content).hexdigest()


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_read_only_answer_file_is_refused_and_kept(tmp_path):
    "Read-only by its mode bits: refused even as root, who may write anyway (a rename over the file would replace it)"
    store = AnswerStore(tmp_path / "lesson.answers.json")
    store.set("first", "kept")
    before = sha256(store.path)
    store.path.chmod(0o444)
    try:
        with pytest.raises(AnswerStoreError, match="is read-only, so the answer to 'second' was not saved"):
            store.set("second", "refused")
        assert sha256(store.path) == before and store.all() == {"first": "kept"}
        assert [path.name for path in tmp_path.iterdir() if path.suffix == ".tmp"] == []
    finally:
        store.path.chmod(0o644)


def test_a_folder_or_a_path_under_a_file_is_not_an_answer_file(tmp_path):
    (tmp_path / "folder.answers.json").mkdir()
    with pytest.raises(AnswerStoreError, match="is a folder, not an answer file"):
        AnswerStore(tmp_path / "folder.answers.json")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(AnswerStoreError, match="is a file, not a folder"):
        AnswerStore(tmp_path / "notes.txt" / "lesson.answers.json")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    store = AnswerStore(tmp_path / "later.answers.json")
    (tmp_path / "later.answers.json").mkdir()  # the file became a folder after the store was made
    with pytest.raises(AnswerStoreError, match="is a folder now"):
        store.set("q", 1)


@pytest.mark.parametrize("path, lock_timeout, message", [(42, 30, "a path like"), (None, 30, "a path like"),
                                                         ("lesson.answers.json", 0, "positive number"),
                                                         ("lesson.answers.json", "30", "number of seconds"),
                                                         ("lesson.answers.json", float("nan"), "positive number"),
                                                         ("lesson.answers.json\x00.json", 30, "ends in .json")])
def test_bad_arguments_get_the_kits_error(tmp_path, monkeypatch, path, lock_timeout, message):
    from mlops_kit.errors import MlopsKitError
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MlopsKitError, match=message):
        AnswerStore(path, lock_timeout=lock_timeout)
    assert list(tmp_path.iterdir()) == []


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
