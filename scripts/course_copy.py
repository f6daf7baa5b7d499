"""The learner's own copy of the course, so that a learner's work never changes the files git tracks.

`make lab` opens JupyterLab on a copy of the course (the notebooks of `nbs/` and `exercises/`, in the same folders, so
that every link between them still works), made on first run in a folder git ignores (`my-course/` unless `COURSE=`
says otherwise). Lessons saved with their outputs, answers typed into exercises, files a lesson writes: all stay in the
copy. `make update` pulls the course's updates, then brings them into the copy without losing the learner's work:

- a notebook the learner has not changed since it was copied is replaced by the new version;
- a notebook the learner has changed is kept as it is, and the new version is written beside it as
  `NAME.updated.ipynb`, for the learner to compare;
- a notebook new in the course is added;
- a notebook the course no longer has (a lesson renamed or split) leaves the copy if the learner never changed it,
  and stays, as the learner's own file, if they did.

What the learner changed is told by the copy's manifest, `.course-manifest.json`: the SHA-256 of each notebook as it was
copied. Usage:

    python scripts/course_copy.py make COPY [--source ROOT]     # make the copy unless it exists
    python scripts/course_copy.py update COPY [--source ROOT]   # bring the course's updates into it
"""
import argparse, hashlib, json, shutil, sys
from pathlib import Path

COURSE_FOLDERS = ["nbs", "exercises"]  # what a learner opens; the worked answers (solutions/) stay out
LINKED_FILES = ["solutions/README.md"]  # linked from the course home: how instructors write and grade exercises (no answers)
MANIFEST = ".course-manifest.json"
UPDATED_SUFFIX = ".updated.ipynb"  # the course's new version of a notebook the learner changed, written beside it


def course_files(source: Path) -> list:
    "The course's notebooks under `source` and the files they link to, as paths relative to it, in a stable order"
    notebooks = [path.relative_to(source) for folder in COURSE_FOLDERS for path in (source / folder).rglob("*.ipynb")
                 if ".ipynb_checkpoints" not in path.parts and not path.name.endswith(UPDATED_SUFFIX)]
    return sorted(notebooks + [Path(name) for name in LINKED_FILES if (source / name).is_file()])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(copy: Path) -> dict:
    "The manifest of `copy`: relative path -> SHA-256 of the notebook as copied; raises SystemExit if it is missing or unreadable"
    try: manifest = json.loads((copy / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{copy} has no readable {MANIFEST} ({error}): it was not made by `make lab`. Move it aside and run `make lab` "
                         "to make a fresh copy") from None
    if not isinstance(manifest, dict): raise SystemExit(f"{copy / MANIFEST} is not a manifest of the course: move {copy} aside and run `make lab`")
    return manifest


def write_manifest(copy: Path, manifest: dict):
    temporary = copy / (MANIFEST + ".tmp")
    temporary.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    temporary.replace(copy / MANIFEST)


def copy_file(source: Path, copy: Path, relative: Path, target: Path | None = None) -> str:
    "Copy the course's file `relative` to `target` (default: its place in `copy`); its SHA-256"
    target = target or copy / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / relative, target)
    return sha256(source / relative)


def make_copy(source: Path, copy: Path) -> str:
    "Make the learner's copy of the course in `copy` unless it exists; what was done, in a sentence"
    if (copy / MANIFEST).exists(): return f"Your copy of the course: {copy} (`make update` brings the course's updates into it)"
    if copy.exists() and any(copy.iterdir()):
        raise SystemExit(f"{copy} exists and is not a copy of the course (no {MANIFEST}): give another folder with COURSE=..., or move it aside")
    files = course_files(source)
    if not files: raise SystemExit(f"No course notebooks under {source}: run this from the kit's folder")
    copy.mkdir(parents=True, exist_ok=True)
    write_manifest(copy, {str(relative): copy_file(source, copy, relative) for relative in files})
    return f"Made your copy of the course in {copy} ({len(files)} files); your work stays there, out of git's way"


def update_copy(source: Path, copy: Path) -> dict:
    "Bring the course's notebooks into the copy, keeping the learner's changes; relative paths by what happened to them"
    manifest, outcome = read_manifest(copy), dict(updated=[], added=[], kept=[], unchanged=[], removed=[], yours_now=[])
    files = course_files(source)
    for relative in files:
        key, mine, new = str(relative), copy / relative, sha256(source / relative)
        copied, now = manifest.get(key), sha256(mine) if mine.exists() else None
        if now == new: manifest[key] = new  # the copy holds the course's version already
        if now == new or (now is not None and new == copied):  # ... or the course has not changed it since it was copied
            outcome["unchanged"].append(key)
        elif now is not None and now != copied:  # the learner's work: kept, with the course's version beside it
            copy_file(source, copy, relative, mine.with_name(mine.stem + ".updated" + mine.suffix))
            outcome["kept"].append(key)
        else:
            outcome["updated" if now is not None else "added"].append(key)
            manifest[key] = copy_file(source, copy, relative)
    drop_what_the_course_removed(copy, manifest, {str(relative) for relative in files}, outcome)
    write_manifest(copy, manifest)
    return outcome


def drop_what_the_course_removed(copy: Path, manifest: dict, course: set, outcome: dict):
    "Notebooks of the manifest the `course` no longer has: deleted from the copy if the learner never changed them, else left as theirs"
    for key in sorted(set(manifest) - course):
        mine, copied = copy / key, manifest.pop(key)
        if mine.exists() and sha256(mine) != copied: outcome["yours_now"].append(key)
        else:
            mine.unlink(missing_ok=True)
            outcome["removed"].append(key)


def update_summary(outcome: dict) -> str:
    lines = [f"{len(outcome['updated'])} file(s) updated, {len(outcome['added'])} added, {len(outcome['unchanged'])} already up to date"]
    lines += [f"kept your changes to {key}; the course's new version is beside it: {Path(key).with_name(Path(key).stem + '.updated' + Path(key).suffix)}"
              for key in outcome["kept"]]
    if outcome["removed"]: lines.append(f"removed {len(outcome['removed'])} file(s) the course no longer has (you had not changed them)")
    lines += [f"the course no longer has {key}; you changed it, so it stays in your copy as your own file" for key in outcome["yours_now"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["make", "update"], help="make the copy (unless it exists), or bring the course's updates into it")
    parser.add_argument("copy", type=Path, help="the learner's copy (make lab uses my-course/)")
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parent.parent, help="the kit's folder (default: this checkout)")
    args = parser.parse_args(argv)
    copy, source = args.copy.resolve(), args.source.resolve()
    if copy == source or source in copy.parents and copy.relative_to(source).parts[0] in COURSE_FOLDERS:
        raise SystemExit(f"The copy cannot be the course itself or inside {', '.join(COURSE_FOLDERS)}: give a folder of its own, like my-course")
    print(make_copy(source, copy) if args.action == "make" else update_summary(update_copy(source, copy)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
