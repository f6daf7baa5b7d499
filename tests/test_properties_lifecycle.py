"""Property-based tests for the lifecycle's parsers: criteria strings, criteria and decision dictionaries, journal files.
Any input either parses or raises the kit's documented error (`MlopsKitError`; `JournalError` for a journal file),
never anything else, and a journal that is refused is left byte-identical."""
import hashlib, json, math, tempfile, warnings
from pathlib import Path

from hypothesis import given, strategies as st

from properties import SETTINGS, mutated
from mlops_kit.errors import MlopsKitError
from mlops_kit.lifecycle import (Criteria, Criterion, Decision, JournalError, MetricRegistry, Project, cost_metric,
                                 metric_registry)

METRICS = [*metric_registry.names(), "cost_per_1000"]


def fresh_registry():
    "A registry of the built-ins and one cost metric, so no example changes the shared one"
    registry = MetricRegistry.default()
    registry.register(cost_metric("cost_per_1000", false_positive_cost=10, false_negative_cost=100))
    return registry


# ---- criteria strings: mostly valid, with one part wrong --------------------------------------------------------

def mostly(valid, wrong):
    "`valid` four times in five, else `wrong`: inputs with one thing wrong reach the checks after the parser"
    return st.integers(0, 4).flatmap(lambda draw: valid if draw else wrong)


metric_names = mostly(st.sampled_from(METRICS), st.one_of(st.sampled_from(["recal", "Recall", "auc", "cost", "x.y", "_", "9a"]),
                                                          st.text(max_size=8)))
comparisons = mostly(st.sampled_from([">=", "<=", ">", "<"]), st.sampled_from(["=>", "==", "=", "!=", ">>", "<>", "≥", ""]))
numbers = st.one_of(st.floats(-2, 2), st.floats(0, 1), st.integers(0, 100), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1, 0.8, 80, 100, 1e9, -0.5, 50, 12000]))
thresholds = mostly(st.one_of(numbers.map(repr), numbers.map(str)),
                    st.one_of(st.sampled_from(["80%", "4,000", "0.8.1", "1e400", "-1e400", "nan", "inf", "-inf", "0x10",
                                               "1_000"]), st.text(max_size=6)))
spaces = mostly(st.just(" "), st.sampled_from(["", "  ", "\t", "\n"]))


@st.composite
def criterion_texts(draw):
    if draw(st.integers(0, 9)) == 0: return draw(st.text(max_size=30))
    parts = [draw(metric_names), draw(spaces), draw(comparisons), draw(spaces), draw(thresholds)]
    return draw(spaces) + "".join(parts) + draw(spaces)


def parses_or_refuses(build):
    "The built value, or None if the kit refused it with its own error; anything else fails the test"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try: return build()
        except MlopsKitError: return None


@SETTINGS
@given(criterion_texts())
def test_a_criterion_string_parses_or_raises_the_kits_error(text):
    registry = fresh_registry()
    criterion = parses_or_refuses(lambda: Criterion.from_string(text, registry=registry))
    if criterion is not None:  # what parses reads back the same, and is a criterion a model can fail and meet
        assert Criterion.from_string(str(criterion), registry=registry).to_dict() == criterion.to_dict()
        assert math.isfinite(criterion.threshold)
        metric = registry[criterion.metric]
        assert metric.lower <= criterion.threshold <= metric.upper


@SETTINGS
@given(criterion_texts(), st.one_of(st.lists(criterion_texts(), max_size=4), criterion_texts(), st.none(),
                                    st.integers(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
def test_criteria_from_strings_parse_or_raise_the_kits_error(primary, others):
    registry = fresh_registry()
    criteria = parses_or_refuses(lambda: Criteria(primary, [] if others is None else others, registry=registry))
    if criteria is not None:
        assert Criteria.from_dict(json.loads(json.dumps(criteria.to_dict())), registry=fresh_registry()) == criteria
        assert len(set(criteria.metrics)) == len(criteria)


# ---- dictionaries: a valid one, changed in up to three places ---------------------------------------------------

odd_values = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-10 ** 30, 10 ** 30),
                       st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                       st.sampled_from(["", "recall", ">=", "design", "go", "iterate", "2025-01-01", "cost_per_1000", "ml"]),
                       st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))




VALID_CRITERIA = [
    Criteria("cost_per_1000 <= 12000", ["recall >= 0.8", "latency_p95_ms <= 50"], registry=fresh_registry()).to_dict(),
    Criteria("roc_auc >= 0.7", ["precision > 0", "log_loss < 0.7", "brier < 0.3"]).to_dict(),
    Criteria(Criterion("recall", ">=", 1, description="every churner")).to_dict(),
]
VALID_DECISIONS = [Decision("design", "go", evidence="beats the baseline", metrics={"recall": 0.8}, author="ana").to_dict(),
                   Decision("deployment", "iterate", "development", metrics={"curve": [0.1, 0.2]}).to_dict(),
                   Decision.from_recommendation("retire").to_dict()]


@SETTINGS
@given(st.sampled_from(VALID_CRITERIA).flatmap(lambda valid: mutated(valid, odd_values)))
def test_a_criteria_dictionary_parses_or_raises_the_kits_error(data):
    criteria = parses_or_refuses(lambda: Criteria.from_dict(data, registry=fresh_registry()))
    if criteria is not None:
        assert Criteria.from_dict(json.loads(json.dumps(criteria.to_dict())), registry=fresh_registry()) == criteria
    primary = data.get("primary") if isinstance(data, dict) else data
    parses_or_refuses(lambda: Criterion.from_dict(primary, registry=fresh_registry()))


@SETTINGS
@given(st.sampled_from(VALID_DECISIONS).flatmap(lambda valid: mutated(valid, odd_values)))
def test_a_decision_dictionary_parses_or_raises_the_kits_error(data):
    decision = parses_or_refuses(lambda: Decision.from_dict(data))
    if decision is not None:
        assert Decision.from_dict(json.loads(json.dumps(decision.to_dict()))) == decision


# ---- journal files: whatever bytes are at the path, opening raises JournalError or works, and changes nothing ------

def valid_journal()->tuple[dict, bytes]:
    "A small journal (criteria, two decisions and a record): as a document of format version 1, and as JSON lines"
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "journal.json"
        project = Project(path, name="churn", registry=fresh_registry())
        project.set_criteria(Criteria("cost_per_1000 <= 12000", ["recall >= 0.8"], registry=project.registry))
        project.decide("go", evidence="beats the baseline", metrics={"baseline": 15000}, author="ana")
        project.add_record("study", "grid", {"best": 9800.0, "trials": [1, 2, {"a": None}]})
        project.add_decision(Decision("development", "iterate", "design", author="ana"))
        lines = path.read_bytes()
        header, *entries = [json.loads(line) for line in lines.splitlines()]
        return {**header, "format_version": 1, "entries": entries}, lines


VALID_JOURNAL, VALID_LINES = valid_journal()


def as_json_lines(document)->bytes:
    "`document` written in JSON lines: its fields but `entries` on the first line, then one entry a line"
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        return (json.dumps(document) + "\n").encode()
    header = {name: value for name, value in document.items() if name != "entries"}
    return "".join(json.dumps(value, ensure_ascii=False) + "\n" for value in [header, *document["entries"]]).encode()


@st.composite
def edited_lines(draw):
    "The valid JSON-lines journal with whole lines removed, repeated, swapped or replaced by odd text"
    lines = VALID_LINES.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["drop", "repeat", "swap", "replace", "blank"]))
        if edit == "drop" and len(lines) > 1: del lines[position]
        elif edit == "repeat": lines.insert(position, lines[position])
        elif edit == "swap": lines[position], lines[-1] = lines[-1], lines[position]
        elif edit == "replace": lines[position] = draw(st.text(max_size=20)).encode("utf-8", "surrogatepass") + b"\n"
        elif edit == "blank": lines.insert(position, b"\n")
    return b"".join(lines)

VERSION_2 = {**VALID_JOURNAL, "format_version": 2}

journal_bytes = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    mutated(VALID_JOURNAL, odd_values).map(lambda document: json.dumps(document).encode()),
    mutated(VALID_JOURNAL, odd_values, max_changes=1).map(lambda document: json.dumps(document, indent=2).encode()),
    st.tuples(st.just(json.dumps(VALID_JOURNAL).encode()), st.integers(0, 400)).map(lambda pair: pair[0][:pair[1]]),
    mutated(VERSION_2, odd_values).map(as_json_lines),
    mutated(VERSION_2, odd_values, max_changes=1).map(as_json_lines),
    st.integers(0, len(VALID_LINES)).map(lambda end: VALID_LINES[:end]),
    edited_lines(),
    st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=5),
                 lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
                 max_leaves=10).map(lambda value: json.dumps(value).encode()),
)


@SETTINGS
@given(journal_bytes)
def test_a_journal_file_opens_or_raises_journal_error_and_is_never_changed(content):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "journal.json"
        path.write_bytes(content)
        before = hashlib.sha256(content).hexdigest()
        try: project = Project.open(path, registry=fresh_registry())
        except JournalError: project = None
        if project is not None:  # whatever opens can be read through every property
            project.records(), project.decisions, project.phase, project.stopped, repr(project), project._repr_html_()
            try: project.criteria, project.criteria_history
            except JournalError: pass
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
        assert sorted(item.name for item in Path(directory).iterdir()) == ["journal.json"]


@SETTINGS
@given(journal_bytes)
def test_an_append_to_any_file_raises_journal_error_changing_nothing_or_adds_exactly_one_entry(content):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "journal.json"
        project = Project(path, registry=fresh_registry())      # opened while sound, then the file is replaced
        path.write_bytes(content)
        try: before = Project.open(path, registry=fresh_registry()).records()
        except JournalError: before = None
        try: record = project.add_record("alert", "drift", {"share": 0.5})
        except JournalError:
            assert path.read_bytes() == content
            return
        after = path.read_bytes()
        if before is None:  # unreadable in its middle only: the append read the file's ends, and added one line after them
            assert after.startswith(content) and after[len(content):].count(b"\n") == 1
        else:  # a journal of either version: it now holds every earlier entry and the new one, in JSON lines
            records = Project.open(path, registry=fresh_registry()).records()
            assert records == [*before, record] and json.loads(after.split(b"\n")[0])["format_version"] == 2
        assert sorted(item.name for item in Path(directory).iterdir()) == ["journal.json", "journal.json.lock"]
