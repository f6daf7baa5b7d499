"""The lessons in nbs/course/ tell one story in short parts: one currency, one sponsor, every "Next" section links to the
next part, each part fits one sitting and ends with a checkpoint question.

A learner who meets prices in dollars in one lesson and in euros in the next, or a sponsor who changes name between
lessons, stops trusting the story; a "Next" section without a link leaves them to find the notebook themselves; a part
that takes most of an hour is put down half read.
"""
import itertools, json, math, re
from pathlib import Path

import pytest

COURSE = Path(__file__).resolve().parent.parent / "nbs" / "course"
LESSONS = sorted(COURSE.glob("0*.ipynb"))
AFTER_THE_LESSONS = "../11_your_own_data.ipynb"  # the library notebook the last lesson sends learners to
CURRENCIES = {"dollar": r"\bdollars?\b|\$ ?\d|\bUSD\b", "euro": r"\beuros?\b|€|\bEUR\b", "pound": r"£|\bGBP\b|\bpounds sterling\b",
              "yen": r"¥|\bJPY\b|\byen\b"}
# a person named with the sponsor's role: "Maya, the sponsor", "Maya (head of retention)", "Dana (product owner)"
SPONSOR = re.compile(r"\b([A-Z][a-z]+)(?:, | \()(?:the )?(?:sponsor|head of retention|product owner)")


def text(lesson:Path)->str:
    "Every cell's source of a lesson notebook, markdown and code"
    return "\n".join("".join(cell["source"]) for cell in json.loads(lesson.read_text(encoding="utf-8"))["cells"])


LESSON_NAME = re.compile(r"(?P<number>0\d)(?P<part>[a-z]?)_[a-z_]+\.ipynb")  # 01_the_lifecycle, or 03a_..., 03b_... for parts


def test_there_are_six_lessons_each_in_one_or_more_parts():
    names = [LESSON_NAME.fullmatch(lesson.name) for lesson in LESSONS]
    assert all(names), [lesson.name for lesson, name in zip(LESSONS, names) if not name]
    assert sorted({name["number"] for name in names}) == ["01", "02", "03", "04", "05", "06"]
    for number, parts in itertools.groupby(names, key=lambda name: name["number"]):
        parts = [name["part"] for name in parts]
        assert parts in ([""], list("abcdefg"[:len(parts)])), f"lesson {number}: its parts are {parts}, not one notebook or a, b, ..."


def test_the_lessons_use_one_currency():
    named = {currency: [lesson.name for lesson in LESSONS if re.search(pattern, text(lesson), re.IGNORECASE)]
             for currency, pattern in CURRENCIES.items()}
    assert {currency for currency, lessons in named.items() if lessons} == {"dollar"}, named


def test_the_sponsor_has_one_name_from_the_first_lesson_on():
    names = {lesson.name: set(SPONSOR.findall(text(lesson))) for lesson in LESSONS}
    assert set().union(*names.values()) == {"Maya"}, names
    assert names[LESSONS[0].name] == {"Maya"}, "the first lesson should introduce the sponsor by name"


@pytest.mark.parametrize("lesson, following", [(lesson.name, after.name) for lesson, after in zip(LESSONS, LESSONS[1:])]
                         + [(LESSONS[-1].name, AFTER_THE_LESSONS)])
def test_every_next_section_links_to_the_next_lesson(lesson, following):
    section = re.search(r"^## Next\b.*?(?=^#{1,2} |\Z)", text(COURSE / lesson), re.MULTILINE | re.DOTALL)
    assert section, f"{lesson} has no '## Next' section"
    assert f"]({following})" in section.group(0), f"{lesson}'s Next section does not link to {following}"
    assert (COURSE / following).exists()


GOING_FURTHER = {"03": ["scaling out"], "04": ["reading the metrics", "crash guarantees"]}  # lesson number: topics


@pytest.mark.parametrize("number", GOING_FURTHER)
def test_the_deeper_topics_are_optional_going_further_sections(number):
    "Scaling out, crash guarantees and reading the metrics sit in sections marked optional, so a first reading can skip them"
    source = "\n".join(text(lesson) for lesson in LESSONS if lesson.name.startswith(number))
    for topic in GOING_FURTHER[number]:
        assert re.search(rf"^## Going further: {topic}\n\n\*Optional on a first reading\.\*", source, re.M), f"lesson {number}: no optional section on {topic}"


PROSE_WORDS_A_MINUTE = 238  # the average silent reading speed of non-fiction for adults (Brysbaert, 2019)
MINUTES_A_CODE_CELL = 1     # read the code, run it, read the table or figure it shows
LONGEST_PART = 25           # minutes: a part is read in one sitting
SECTION = re.compile(r"^## (.+)", re.M)


def cells(lesson:Path)->list: return json.loads(lesson.read_text(encoding="utf-8"))["cells"]


def sections(lesson:Path)->list:
    "The lesson's cells grouped by `## ` section: [(title, cells)], the cells before the first section under ''"
    grouped, title = [("", [])], ""
    for cell in cells(lesson):
        source = "".join(cell["source"])
        heading = SECTION.search(source) if cell["cell_type"] == "markdown" else None
        if heading: grouped.append((heading.group(1), []))
        grouped[-1][1].append(cell)
    return grouped


def only_imports(source:str)->bool:
    lines = [line for line in source.splitlines() if line.strip()]
    return all(re.match(r"(import |from \S+ import |\s+\w)", line) for line in lines)


def reading_minutes(lesson:Path)->float:
    "Prose at PROSE_WORDS_A_MINUTE (link targets left out), a minute for each code cell but the imports; 'Going further' left out (optional)"
    main_path = [cell for title, part in sections(lesson) if not title.startswith("Going further") for cell in part]
    prose = " ".join(re.sub(r"\]\([^)]*\)", "]", "".join(cell["source"])) for cell in main_path if cell["cell_type"] == "markdown")
    code = [cell for cell in main_path if cell["cell_type"] == "code" and not only_imports("".join(cell["source"]))]
    return len(prose.split()) / PROSE_WORDS_A_MINUTE + MINUTES_A_CODE_CELL * len(code)


@pytest.mark.parametrize("lesson", [lesson.name for lesson in LESSONS])
def test_every_part_fits_one_sitting_and_says_how_long_it_takes(lesson):
    minutes = reading_minutes(COURSE / lesson)
    assert minutes <= LONGEST_PART, f"{lesson} takes about {minutes:.0f} minutes: split it into parts of at most {LONGEST_PART}"
    stated = re.search(r"\*About (\d+) minutes\b", "".join("".join(cell["source"]) for cell in cells(COURSE / lesson)[:3]))
    assert stated, f"{lesson} does not say how long it takes ('*About N minutes...*' in its first cells)"
    assert int(stated.group(1)) == 5 * math.ceil(minutes / 5), f"{lesson} says {stated.group(1)} minutes; the estimate is {minutes:.1f}"


CHECKPOINT_FOLLOWERS = ("Going further", "Recap", "Next", "Practise")  # the sections a checkpoint may be followed by


def checkpoint_questions(lesson:Path)->list:
    "The questions the lesson's '## Checkpoint' section builds, each cell run on its own with the practice module"
    from mlops_kit.practice import MultipleChoice
    titles = [title for title, _ in sections(lesson)]
    assert "Checkpoint" in titles, f"{lesson.name} has no '## Checkpoint' section"
    after = titles[titles.index("Checkpoint") + 1:]
    assert all(title.startswith(CHECKPOINT_FOLLOWERS) for title in after), f"{lesson.name}: the checkpoint is followed by {after}"
    questions = []
    for cell in dict(sections(lesson))["Checkpoint"]:
        if cell["cell_type"] != "code": continue
        namespace = {}
        exec("from mlops_kit.practice import *\n" + "".join(cell["source"]), namespace)
        questions += [value for value in namespace.values() if isinstance(value, MultipleChoice)]
    return questions


def right_answers(question)->list:
    "Every answer the question would call right: each option, or with several every set of options, tried against the seal"
    from mlops_kit.practice import seal
    candidates = ([list(chosen) for size in range(1, len(question.options) + 1) for chosen in itertools.combinations(question.options, size)]
                  if question.several else question.options)
    return [answer for answer in candidates if seal(question.exercise, question.graded(answer)) == question.seal]


@pytest.mark.parametrize("lesson", [lesson.name for lesson in LESSONS])
def test_every_part_ends_with_a_checkpoint_question_that_explains_its_answer(lesson):
    questions = checkpoint_questions(COURSE / lesson)
    assert questions, f"{lesson}: the checkpoint builds no MultipleChoice question"
    for question in questions:
        assert len(right_answers(question)) == 1, f"{lesson}, {question.exercise}: not exactly one answer matches the seal"
        assert question.hints and question.explanation, f"{lesson}, {question.exercise}: a checkpoint gives hints and explains its answer"
        assert question.store is None, f"{lesson}, {question.exercise}: a lesson saves no answer file (the course folder stays clean)"
