"""The answer store of the practice notebooks (`mlops_kit.practice.AnswerStore`) across processes: answers survive a kernel
restart, concurrent writers lose nothing. Answer files are the learner's: git ignores them. What a single store refuses
(broken, read-only or misplaced files, bad arguments and answers, a failed write) is tested in its notebook."""
import subprocess, sys

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


def test_an_answer_file_must_be_json_and_git_ignores_answer_files(tmp_path):
    with pytest.raises(AnswerStoreError, match="ends in .json"):
        AnswerStore(tmp_path / "answers.txt")
    ignored = subprocess.run(["git", "check-ignore", "-q", "exercises/01_the_lifecycle_practice.answers.json"], cwd=REPO_ROOT)
    assert ignored.returncode == 0, "answer files must be ignored by git"
