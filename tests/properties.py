"""What the property-based tests (tests/test_properties_*.py) share: hypothesis settings, a fresh folder to work in,
file hashes to prove that a refused call changed nothing, and mutations of a valid document ("one thing wrong")."""
import contextlib, copy, hashlib, os, tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings, strategies as st

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextlib.contextmanager
def inside_a_new_folder():
    "Work in a fresh temporary folder (relative paths land there), then come back"
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try: yield Path(folder)
        finally: os.chdir(here)


def files_in(folder: Path) -> dict:
    "path -> sha256 of every file under `folder`"
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.rglob("*") if path.is_file()}


def places(value, path=()):
    "Every path into `value` (keys and indexes): the places a mutation may change"
    yield path
    if isinstance(value, dict):
        for key, item in value.items(): yield from places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value): yield from places(item, (*path, index))


def get(value, path):
    "The part of `value` at `path`"
    for key in path: value = value[key]
    return value


@st.composite
def mutated(draw, original, odd_values, max_changes=3):
    "`original`, with up to `max_changes` values replaced by `odd_values`, deleted or added anywhere in it (often none or one)"
    document = copy.deepcopy(original)
    for _ in range(draw(st.integers(0, max_changes))):
        path = draw(st.sampled_from(list(places(document))))
        if not path:
            if draw(st.integers(0, 4)) == 0: document = draw(odd_values)
            continue
        parent, key = get(document, path[:-1]), path[-1]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace": parent[key] = draw(odd_values)
        elif action == "delete": del parent[key]
        elif isinstance(parent, dict): parent[draw(st.text(max_size=6))] = draw(odd_values)
        else: parent.append(draw(odd_values))
    return document
