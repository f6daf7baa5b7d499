"""The project journal on disk: corrupt, old, read-only and locked files, failed writes and concurrent writers.
The unit-level checks of metrics, criteria, decisions and the journal run in their notebooks (nbs/lifecycle/)."""
import json, math, re, subprocess, sys, textwrap, time

import numpy as np
import pandas as pd
import pytest

from mlops_kit.lifecycle import journal as lifecycle
from mlops_kit.errors import MlopsKitError
from mlops_kit.lifecycle import (Criteria, Criterion, Decision, JournalError, Metric, MetricRegistry,
                                 MissingMetricError, Phase, Project, UnknownMetricError, Verdict, cost_metric,
                                 metric_registry)

# --- the project journal ------------------------------------------------------------------------------------------

def test_failed_write_leaves_the_previous_file_byte_identical(tmp_path, monkeypatch):
    path = tmp_path / "journal.json"
    project = Project(path)
    project.add_record("model", "churn", {"version": 1})
    before = path.read_bytes()
    def failing_fsync(descriptor): raise OSError("disk full")
    monkeypatch.setattr(lifecycle.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        project.add_record("model", "churn", {"version": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(entry.name for entry in tmp_path.iterdir() if not entry.name.endswith(".lock")) == ["journal.json"]
    assert [record.data for record in project.records("model")] == [{"version": 1}]


def _as_version_1(path):
    "The journal at `path` as a document of format version 1 (one JSON document), as journals were written before"
    header, *entries = [json.loads(line) for line in path.read_text().splitlines()]
    return {**header, "format_version": 1, "entries": entries}


def _journal_with_one_record(path):
    Project(path).add_record("alert", "drift", {"share": 0.4})
    return _as_version_1(path)


def _drop_name(document): del document["entries"][0]["name"]; return json.dumps(document, indent=2)
def _text_id(document): document["entries"][0]["id"] = "1"; return json.dumps(document, indent=2)
def _wrong_version(document): document["format_version"] = 3; return json.dumps(document, indent=2)
def _other_format(document): document["format"] = "model card"; return json.dumps(document, indent=2)
def _newer_version_with_new_field(document):
    document.update(format_version=3, owners=["ana"]); return json.dumps(document, indent=2)
def _no_version(document): del document["format_version"]; return json.dumps(document, indent=2)
def _bad_decision(document):
    document["entries"].append({"id": 2, "kind": "decision", "name": "design", "timestamp": "2025-01-01T00:00:00+00:00",
                                "data": {"phase": "design", "verdict": "iterate"}})
    return json.dumps(document, indent=2)
def _bad_criteria(document):
    document["entries"].append({"id": 2, "kind": "criteria", "name": "criteria", "timestamp": "2025-01-01T00:00:00+00:00",
                                "data": {"primary": {"metric": "recall", "comparison": "=>", "threshold": 0.8}, "others": []}})
    return json.dumps(document, indent=2)
def _truncated(document): return json.dumps(document, indent=2)[:-40]


@pytest.mark.parametrize("corrupt, problem", [
    (_truncated, "not valid JSON: .* at line \\d+, column \\d+"),
    (lambda document: "", "not valid JSON: Expecting value at line 1, column 1"),
    (_wrong_version, "its format version is 3, this mlops-kit reads version 2 \\(and version 1, which it rewrites as 2\\) "
                     "\\(written by a newer mlops-kit: upgrade it\\)"),
    (_no_version, "the journal is missing the field 'format_version'"),
    (_other_format, "its format is 'model card', not 'mlops-kit journal'"),
    (_newer_version_with_new_field, "its format version is 3, this mlops-kit reads version 2"),
    (_drop_name, "entry 1 is missing the field 'name'"),
    (_text_id, "entry 1: the field 'id' must be an integer, got '1'"),
    (_bad_decision, "entry 2 \\(decision\\): An 'iterate' decision goes back to a phase"),
    (_bad_criteria, "entry 2 \\(criteria\\): the primary criterion of criteria: Unknown comparison '=>'"),
    (lambda document: "[1, 2]", "the journal must be an object"),
])
def test_corrupt_journal_raises_naming_file_and_problem_and_is_never_overwritten(tmp_path, corrupt, problem):
    path = tmp_path / "churn.journal.json"
    path.write_text(corrupt(_journal_with_one_record(path)))
    before = path.read_bytes()
    with pytest.raises(JournalError, match="Journal '.*churn.journal.json': " + problem) as raised:
        Project(path)
    assert "The file was left unchanged" in str(raised.value) and raised.value.path == path
    with pytest.raises(JournalError):
        Project.open(path)
    assert path.read_bytes() == before


def _lines_journal(path):
    "A journal in JSON lines with criteria, a decision and a record: its lines, without their newlines"
    project = Project(path, name="churn")
    project.set_criteria(Criteria("recall >= 0.8"))
    project.decide("go", evidence="beats the baseline")
    project.add_record("alert", "drift", {"share": 0.4})
    return path.read_text().split("\n")[:-1]


def _replace_line(lines, number, change):
    "`lines` with line `number` (from 1) parsed, changed by `change` and written back as JSON"
    value = json.loads(lines[number - 1])
    change(value)
    return [*lines[:number - 1], json.dumps(value), *lines[number:]]


def _joined(lines): return "\n".join(lines) + "\n"


@pytest.mark.parametrize("corrupt, problem", [
    (lambda lines: _joined(lines)[:-1], "its last line \\(line 4\\) does not end with a newline: an append was cut short"),
    (lambda lines: _joined(lines)[:-9] + "\n", "line 4 is not valid JSON"),
    (lambda lines: _joined(lines) + '{"id": 4, "kind"\n', "line 5 is not valid JSON: Expecting ':' delimiter at column 17"),
    (lambda lines: _joined([*lines[:2], "", *lines[2:]]), "line 3 is not valid JSON: Expecting value at column 1"),
    (lambda lines: _joined(_replace_line(lines, 3, lambda entry: entry.pop("name"))),
     "line 3 \\(entry 2\\) is missing the field 'name'"),
    (lambda lines: _joined(_replace_line(lines, 4, lambda entry: entry.update(id=2))),
     "line 4 \\(entry 3\\): its id 2 is not above the previous id 2"),
    (lambda lines: _joined(_replace_line(lines, 3, lambda entry: entry["data"].update(verdict="maybe"))),
     "line 3 \\(entry 2\\) \\(decision\\): Unknown verdict 'maybe'"),
    (lambda lines: _joined(_replace_line(lines, 1, lambda header: header.update(format_version=3))),
     "its format version is 3, this mlops-kit reads version 2 .*upgrade it"),
    (lambda lines: _joined(_replace_line(lines, 1, lambda header: header.pop("created"))),
     "the journal's header \\(line 1\\) is missing the field 'created'"),
    (lambda lines: _joined(_replace_line(lines, 1, lambda header: header.update(format="model card"))),
     "its format is 'model card', not 'mlops-kit journal'"),
])
def test_a_broken_json_lines_journal_is_refused_naming_the_line_and_never_overwritten(tmp_path, corrupt, problem):
    path = tmp_path / "churn.journal.json"
    path.write_text(corrupt(_lines_journal(path)))
    before = sha256(path)
    with pytest.raises(JournalError, match="Journal '.*churn.journal.json': " + problem) as raised:
        Project(path)
    assert "The file was left unchanged" in str(raised.value) and raised.value.path == path
    assert sha256(path) == before


@pytest.mark.parametrize("corrupt, problem", [
    (lambda lines: _joined(lines)[:-1], "its last line \\(line 4\\) does not end with a newline"),
    (lambda lines: _joined(lines)[:-9] + "\n", "line 4 is not valid JSON"),
    (lambda lines: _joined(_replace_line(lines, 4, lambda entry: entry.update(timestamp="yesterday"))), "line 4 \\(entry 3\\)"),
    (lambda lines: _joined(_replace_line(lines, 1, lambda header: header.update(format_version=3))), "its format version is 3"),
    (lambda lines: _joined(lines[:1])[:-1], "its last line \\(line 1\\) does not end with a newline"),
    (lambda lines: "", "not valid JSON: Expecting value at line 1, column 1"),
])
def test_an_append_to_a_journal_broken_at_its_ends_is_refused_naming_the_line_and_writes_nothing(tmp_path, corrupt, problem):
    path = tmp_path / "churn.journal.json"
    lines = _lines_journal(path)
    project = Project(path)                                 # opened while the file was sound
    path.write_text(corrupt(lines))
    before = sha256(path)
    with pytest.raises(JournalError, match=problem):
        project.add_record("alert", "drift", {"share": 0.5})
    assert sha256(path) == before


def test_an_append_writes_one_line_and_reads_only_the_ends_of_the_journal(tmp_path, monkeypatch):
    path = tmp_path / "churn.journal.json"
    project = Project(path)
    for number in range(50): project.add_record("alert", "drift", {"number": number})
    before = path.read_bytes()
    def no_full_read(content, path): raise AssertionError("an append parsed the whole journal")
    monkeypatch.setattr(lifecycle, "_parse_journal", no_full_read)
    record = project.add_record("alert", "café ☕", {"share": 0.5, "note": "a\nb\u2028c"})
    monkeypatch.undo()
    added = path.read_bytes()[len(before):]
    assert path.read_bytes().startswith(before) and added.count(b"\n") == 1 and added.endswith(b"\n")
    assert json.loads(added) == {"id": 51, "kind": "alert", "name": "café ☕", "timestamp": json.loads(added)["timestamp"],
                                 "data": {"share": 0.5, "note": "a\nb\u2028c"}}
    assert "café ☕".encode() in added and b", " not in added             # UTF-8 as it is, compact separators
    assert record.id == 51 and Project.open(path).latest("alert").name == "café ☕"
    assert [record.id for record in Project.open(path).records()] == list(range(1, 52))


def test_a_version_1_journal_is_read_and_migrated_to_json_lines_on_its_first_write(tmp_path):
    path = tmp_path / "churn.journal.json"
    _lines_journal(path)
    old = _as_version_1(path)
    path.write_text(json.dumps(old, indent=2))              # as mlops-kit wrote it before JSON lines
    path.chmod(0o640)
    project = Project.open(path)
    assert project.name == "churn" and project.phase is Phase.development and project.criteria == Criteria("recall >= 0.8")
    assert [record.id for record in project.records()] == [1, 2, 3]
    assert json.loads(path.read_text())["format_version"] == 1     # reading wrote nothing
    project.add_record("alert", "drift", {"share": 0.5})
    header, *entries = [json.loads(line) for line in path.read_text().split("\n")[:-1]]
    assert header == {"format": "mlops-kit journal", "format_version": 2, "name": "churn", "created": old["created"]}
    assert entries[:3] == old["entries"] and entries[3]["id"] == 4 and entries[3]["data"] == {"share": 0.5}
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(item.name for item in tmp_path.iterdir()) == ["churn.journal.json", "churn.journal.json.lock"]
    project.add_record("alert", "drift", {"share": 0.6})    # from now on, appends are one line
    assert [record.id for record in Project.open(path).records()] == [1, 2, 3, 4, 5]


def test_a_refused_migration_changes_no_byte(tmp_path):
    path = tmp_path / "churn.journal.json"
    _lines_journal(path)
    path.write_text(json.dumps(_as_version_1(path)))
    path.chmod(0o444)
    before = sha256(path)
    with pytest.raises(JournalError, match="the file is read-only, so nothing was added"):
        Project.open(path).add_record("alert", "drift", {})
    with pytest.raises(TypeError, match="Cannot store data"):
        Project.open(path).add_record("alert", "drift", {"model": object()})
    assert sha256(path) == before


def test_a_file_broken_while_open_is_not_overwritten(tmp_path):
    path = tmp_path / "journal.json"
    project = Project(path)
    path.write_text('{"format": "mlops-kit journal", "format_version": 1,')
    before = path.read_bytes()
    with pytest.raises(JournalError, match="not valid JSON.*line 1, column 53"):
        project.add_record("alert", "drift", {})
    with pytest.raises(JournalError):
        project.set_criteria(Criteria("recall >= 0.8"))
    assert path.read_bytes() == before
    assert "unreadable" in repr(project)


def test_two_objects_on_one_file_lose_nothing(tmp_path):
    path = tmp_path / "journal.json"
    first, second = Project(path), Project(path)
    for number in range(10):
        first.add_record("alert", "first", {"number": number})
        second.add_record("alert", "second", {"number": number})
    first.decide("go")
    assert [record.data["number"] for record in second.records("alert", "first")] == list(range(10))
    assert [record.data["number"] for record in first.records("alert", "second")] == list(range(10))
    assert second.phase is Phase.development and len(second.records()) == 21


_WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from mlops_kit.lifecycle import Project
    path, worker, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    project = Project.open(path)
    Path(f"{go}.ready-{worker}").touch()
    while not go.exists(): time.sleep(0.005)
    for number in range(count): project.add_record("alert", worker, {"number": number})
""")


def test_processes_appending_concurrently_lose_nothing(tmp_path):
    path, go, workers, count = tmp_path / "journal.json", tmp_path / "go", 4, 50
    Project.create(path, name="shared")
    processes = [subprocess.Popen([sys.executable, "-c", _WORKER, str(path), f"worker{index}", str(count), str(go)])
                 for index in range(workers)]
    try:
        while len(list(tmp_path.glob("go.ready-*"))) < workers and all(process.poll() is None for process in processes):
            time.sleep(0.01)
        go.touch()
        return_codes = [process.wait(timeout=120) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None: process.kill()
    assert return_codes == [0] * workers
    project = Project.open(path)
    records = project.records("alert")
    assert len(records) == workers * count
    for index in range(workers):
        assert [record.data["number"] for record in project.records("alert", f"worker{index}")] == list(range(count))
    assert [record.id for record in records] == list(range(1, workers * count + 1))


def test_a_decision_out_of_phase_or_after_a_stop_is_refused_and_nothing_is_written(tmp_path):
    project = Project(tmp_path / "journal.json")
    project.decide("go")  # design -> development
    before = project.path.read_bytes()
    with pytest.raises(ValueError, match="in its development phase, so a decision of the design phase is out of date"):
        project.add_decision(Decision("design", "go"))
    assert project.path.read_bytes() == before
    project.decide("stop", evidence="the business case is gone")
    before = project.path.read_bytes()
    with pytest.raises(ValueError, match="The project was stopped: no decision can follow a stop"):
        project.decide("go")
    assert project.path.read_bytes() == before


# --- issue 13: thresholds inside the metric's range; journal writes that cannot lose anything ----------------------

def sha256(path):
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_old_journal_with_a_criterion_now_refused_fails_clearly_and_can_be_fixed(tmp_path):
    "Written before ranges were checked: the journal opens, its criteria raise JournalError saying how to fix them"
    path = tmp_path / "journal.json"
    project = Project(path)
    project.set_criteria(Criteria("recall >= 0.8"))
    header, entry = path.read_text().splitlines()
    entry = json.loads(entry)
    entry["data"]["others"] = [{"metric": "precision", "comparison": ">=", "threshold": -0.5, "kind": "ml", "description": ""}]
    path.write_text(f"{header}\n{json.dumps(entry)}\n")
    before = sha256(path)
    reopened = Project.open(path)
    for read in (lambda: reopened.criteria, lambda: reopened.criteria_history):
        with pytest.raises(JournalError, match=r"entry 1 cannot be used: 'precision >= -0.5': precision is a share .*"
                                               r"project.set_criteria") as refused:
            read()
        assert "journal.json" in str(refused.value)
    assert "unusable" in reopened._repr_html_()
    assert sha256(path) == before
    fixed = Criteria("recall >= 0.8", ["precision >= 0.3"])
    reopened.set_criteria(fixed)                       # the way out: new criteria, the old version kept as written
    assert reopened.criteria == fixed and len(reopened.records("criteria")) == 2


def test_a_read_only_journal_is_refused_and_left_byte_identical(tmp_path):
    path = tmp_path / "journal.json"
    project = Project(path)
    project.add_record("alert", "drift", {"share": 0.4})
    path.chmod(0o444)   # as root (CI), os.access says writable: the mode bits decide
    before = sha256(path)
    with pytest.raises(JournalError, match="journal.json': the file is read-only, so nothing was added. Nothing was written"):
        project.add_record("alert", "drift", {"share": 0.5})
    with pytest.raises(JournalError, match="read-only"):
        project.decide("go")
    with pytest.raises(JournalError, match="the file is read-only, so nothing can be added to it"):
        project.check_writable()
    with pytest.raises(JournalError, match="read-only"):
        project.set_criteria(Criteria("recall >= 0.8"))
    assert sha256(path) == before and path.stat().st_mode & 0o777 == 0o444
    assert [record.data for record in Project.open(path).records()] == [{"share": 0.4}]   # still readable
    assert sorted(item.name for item in tmp_path.iterdir()) == ["journal.json", "journal.json.lock"]


def test_a_journal_in_a_read_only_folder_is_refused_and_nothing_is_written(tmp_path):
    folder = tmp_path / "frozen"
    folder.mkdir()
    path = folder / "journal.json"
    Project(path).add_record("alert", "drift", {"share": 0.4})
    before, listing = sha256(path), sorted(item.name for item in folder.iterdir())
    folder.chmod(0o555)
    try:
        with pytest.raises(JournalError, match="its folder '.*frozen' is read-only .*so nothing was added"):
            Project(path).add_record("alert", "drift", {"share": 0.5})
        with pytest.raises(JournalError, match="read-only .*so it was not created"):
            Project(folder / "new.json")
        assert sha256(path) == before and sorted(item.name for item in folder.iterdir()) == listing
    finally: folder.chmod(0o755)


def test_a_journal_path_that_is_a_folder_or_under_a_file_is_refused(tmp_path):
    (tmp_path / "folder").mkdir()
    for make in (Project, Project.open, Project.create):
        with pytest.raises(JournalError, match="it is a folder, not a journal file. Give a file path"):
            make(tmp_path / "folder")
    (tmp_path / "file.json").write_text("notes")
    with pytest.raises(JournalError, match="'.*file.json' is a file, not a folder"):
        Project(tmp_path / "file.json" / "journal.json")
    assert (tmp_path / "file.json").read_text() == "notes" and list((tmp_path / "folder").iterdir()) == []


def test_a_lock_held_too_long_is_a_clear_error_and_nothing_is_written(tmp_path):
    from filelock import FileLock
    path = tmp_path / "journal.json"
    project = Project(path, lock_timeout=0.2)
    project.add_record("alert", "drift", {"share": 0.4})
    before = sha256(path)
    with FileLock(f"{path}.lock"):   # another writer holds the lock
        with pytest.raises(JournalError, match="another writer has held its lock .*journal.json.lock' for more than 0.2 s"):
            project.add_record("alert", "drift", {"share": 0.5})
    assert sha256(path) == before
    project.add_record("alert", "drift", {"share": 0.5})   # once released, it works


@pytest.mark.parametrize("arguments, error, message", [
    (dict(name=5), TypeError, "A project name is text, like 'churn'; got 5"),
    (dict(name=""), ValueError, "non-empty text on one line"),
    (dict(name="  "), ValueError, "non-empty text on one line"),
    (dict(name="churn\nproject"), ValueError, "non-empty text on one line"),
    (dict(lock_timeout="60"), TypeError, "lock_timeout is a number of seconds"),
    (dict(lock_timeout=-1), ValueError, "lock_timeout is a number of seconds, 0 or more"),
    (dict(registry="metrics"), TypeError, "registry must be a MetricRegistry"),
])
def test_odd_project_arguments_are_refused_and_no_file_is_made(tmp_path, arguments, error, message):
    with pytest.raises(error, match=message) as refused:
        Project(tmp_path / "journal.json", **arguments)
    assert isinstance(refused.value, MlopsKitError) and list(tmp_path.iterdir()) == []
    with pytest.raises(MlopsKitError):
        Project.create(tmp_path / "journal.json", **arguments)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError, match="A journal path is a file name"):
        Project(None)


def test_odd_record_data_is_refused_and_the_journal_unchanged(tmp_path):
    path = tmp_path / "journal.json"
    project = Project(path)
    project.add_record("alert", "drift", {"share": 0.4})
    before = sha256(path)
    itself = []
    itself.append(itself)
    deep = []
    for _ in range(5_000): deep = [deep]
    for data, message in [(itself, "it contains itself"), (deep, "nested hundreds of levels deep"), ({1, 2}, "set"),
                          ({(1, 2): 3}, "is not text"), (10 ** 5000, "more than 4,000 digits"), (b"bytes", "bytes")]:
        with pytest.raises(TypeError, match=message) as refused:
            project.add_record("alert", "drift", data)
        assert isinstance(refused.value, MlopsKitError)
    with pytest.raises(TypeError, match="A record kind is text, got 5"):
        project.records(5)
    assert sha256(path) == before


@pytest.mark.parametrize("content, problem", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"format": "mlops-kit journal", "format_version": 1, "name": "x", "created": "", "entries": [NaN]}',
     "NaN is not a JSON value"),
    (b'{"format": "mlops-kit journal", "format_version": ' + b"9" * 5000 + b"}", "not valid JSON"),
    (b'{"format": "mlops-kit journal", "format_version": 2, "name": "x", "created": ""}\n'
     b'{"id": 1, "kind": "alert", "name": "x", "timestamp": "2025-01-01T00:00:00+00:00", "data": NaN}\n',
     "line 2 is not valid JSON: NaN is not a JSON value"),
    (b'{"format": "mlops-kit journal", "format_version": 2, "name": "x", "created": ""}\n' + b"[" * 100_000 + b"\n",
     "line 2 is nested too deeply"),
])
def test_journal_files_json_reads_but_the_journal_cannot_are_refused(tmp_path, content, problem):
    path = tmp_path / "journal.json"
    path.write_bytes(content)
    with pytest.raises(JournalError, match=problem):
        Project(path)
    assert path.read_bytes() == content
