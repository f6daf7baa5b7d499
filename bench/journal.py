"""Appending to the project journal: JSON lines (format version 2) against one JSON document (version 1), in one run.

An append is `Project.add_record`, the call behind each checklist click and each monitoring alert. The journal in JSON
lines reads its header and last line, writes one line on an O_APPEND descriptor and fsyncs it. The peer is the append of
the journal as one JSON document, the kit's format before JSON lines, copied here (`append_to_one_document`): under the
same lock it reads the whole file, checks every entry, adds one and rewrites the file atomically (temporary file, fsync,
rename, fsync of the folder). Both journals hold the same entries (a checklist answer each, as the widget writes them)
at 10, 1,000 and 10,000 records. Before each timed append the file is put back to its N records and flushed (not
timed), so each figure is the cost at N. The sizes and formats alternate append by append, so the machine's noise (its
fsync time changes by 10x from one minute to the next) falls on all of them. The floor is what no durable append can
beat: one line written with `os.write` to a plain file and fsynced.
Target: an append in JSON lines costs the same at 10,000 records as at 10 (within 1.5x).

    python bench/journal.py [--appends 200] [--folder PATH]
"""
import argparse, json, os, platform, statistics, sys, tempfile, time, types
from pathlib import Path

from mlops_kit.lifecycle import journal as lifecycle
from mlops_kit.lifecycle import Project
from mlops_kit._toolbox import write_atomic

SIZES = (10, 1_000, 10_000)
TARGET = 1.5


def append_to_one_document(journal, kind: str, name: str, data) -> dict:
    "The journal's append before JSON lines: read and check the whole document, add the entry, rewrite the file atomically"
    journal._check_writable("nothing was added")
    with journal._locked():
        document = journal.read()  # the version-1 reader the kit keeps for migration: every entry checked, as before
        entries = document["entries"]
        entry = dict(id=entries[-1]["id"] + 1 if entries else 1, kind=kind, name=name, timestamp=lifecycle._now(), data=data)
        entries.append(entry)
        write_atomic(journal.path, json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False))
        return entry


def answer(number: int) -> dict:
    "One checklist answer, as the checklist widget records it"
    return {"item": f"item_{number % 40}", "status": "done", "notes": f"checked on the March extract, run {number}",
            "evidence": "reports/data-quality.html", "reason": ""}


def journals(folder: Path, records: int) -> tuple[Path, Path]:
    "Two journals of `records` checklist answers, in JSON lines and as one document; each checked by opening it"
    header = dict(format=lifecycle.JOURNAL_FORMAT, format_version=2, name="bench", created=lifecycle._now())
    entries = [dict(id=number, kind="checklist", name="design", timestamp=lifecycle._now(), data=answer(number))
               for number in range(1, records + 1)]
    lines, document = folder / f"lines-{records}.journal.json", folder / f"document-{records}.journal.json"
    lines.write_text(lifecycle._journal_text(header, entries))
    document.write_text(json.dumps({**header, "format_version": 1, "entries": entries}, indent=2))
    for path in (lines, document): assert len(Project.open(path).records()) == records
    return lines, document


def put_back(path: Path, original: bytes):
    "Return the file at `path` to `original` and flush it to disk, so no timed fsync writes what this wrote"
    if path.read_bytes().startswith(original): os.truncate(path, len(original))  # JSON lines: cut the appended line
    else: path.write_bytes(original)
    descriptor = os.open(path, os.O_RDONLY)
    try: os.fsync(descriptor)
    finally: os.close(descriptor)


def write_and_fsync(path: Path, line: bytes):
    "The floor: append `line` to `path` with one write and an fsync, nothing read, no lock, no check"
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND)
    try: os.write(descriptor, line); os.fsync(descriptor)
    finally: os.close(descriptor)


def median_ms(timings: list[float]) -> float: return 1000 * statistics.median(timings)


def appenders(folder: Path, records: int) -> dict:
    "For `records` records: file -> a call that appends one entry to it and returns the entry's id (JSON lines, document, floor)"
    lines, document = journals(folder, records)
    floor = folder / f"floor-{records}.jsonl"
    floor.write_bytes(lines.read_bytes())
    new, old = Project.open(lines), Project.open(document)
    old._journal.append = types.MethodType(append_to_one_document, old._journal)
    line = lifecycle._json_line(dict(id=records + 1, kind="checklist", name="design", timestamp=lifecycle._now(),
                                     data=answer(0))).encode()
    return {lines: lambda number: new.add_record("checklist", "design", answer(number)).id,
            document: lambda number: old.add_record("checklist", "design", answer(number)).id,
            floor: lambda number: write_and_fsync(floor, line) or records + 1}


def measure(folder: Path, appends: int) -> dict:
    "records -> median ms of an append (JSON lines, one document, floor); every size and kind alternate, each file put back first"
    calls = {(records, kind): (path, append) for records in SIZES
             for kind, (path, append) in zip(("lines", "document", "floor"), appenders(folder, records).items())}
    originals = {key: path.read_bytes() for key, (path, _) in calls.items()}
    timings = {key: [] for key in calls}
    for number in range(appends):
        for key, (path, append) in calls.items():
            put_back(path, originals[key])
            started = time.perf_counter()
            added = append(number)
            timings[key].append(time.perf_counter() - started)
            assert added == key[0] + 1
    for records in SIZES:
        assert json.loads(calls[records, "document"][0].read_text())["format_version"] == 1, "the peer must keep its format"
    return {records: tuple(median_ms(timings[records, kind]) for kind in ("lines", "document", "floor")) for records in SIZES}


def main(appends: int, folder: str | None):
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; median of {appends} "
          f"appends at each size, sizes and formats alternating")
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        figures = measure(Path(scratch), appends)
    smallest = figures[SIZES[0]][0]
    print("| records | JSON lines | one document | write + fsync (floor) | document / lines | lines / floor | lines / lines at 10 |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for records, (new, old, floor) in figures.items():
        print(f"| {records:,} | {new:.2f} ms | {old:.2f} ms | {floor:.2f} ms | **{old / new:.1f}x** | {new / floor:.2f}x "
              f"| {new / smallest:.2f}x |")
    growth = figures[SIZES[-1]][0] / smallest
    print(f"JSON lines at {SIZES[-1]:,} records / at {SIZES[0]}: {growth:.2f}x (target <= {TARGET}x): "
          + ("PASS" if growth <= TARGET else "MISS"))
    return growth <= TARGET


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=200, help="timed appends per size and format")
    parser.add_argument("--folder", help="where the journals are written (default: the system's temporary folder)")
    arguments = parser.parse_args()
    sys.exit(0 if main(arguments.appends, arguments.folder) else 1)
