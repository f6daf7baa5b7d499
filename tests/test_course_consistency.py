"""The lessons in nbs/course/ tell one story: one currency, one sponsor, and every "Next" section links to the next lesson.

A learner who meets prices in dollars in one lesson and in euros in the next, or a sponsor who changes name between
lessons, stops trusting the story; a "Next" section without a link leaves them to find the notebook themselves.
"""
import json, re
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


def test_there_are_six_lessons():
    assert [lesson.name[:2] for lesson in LESSONS] == ["01", "02", "03", "04", "05", "06"]


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


GOING_FURTHER = {"03_development": ["scaling out"], "04_deployment": ["reading the metrics", "crash guarantees"]}


@pytest.mark.parametrize("lesson", GOING_FURTHER)
def test_the_deeper_topics_are_optional_going_further_sections(lesson):
    "Scaling out, crash guarantees and reading the metrics sit in sections marked optional, so a first reading can skip them"
    source = text(COURSE / f"{lesson}.ipynb")
    for topic in GOING_FURTHER[lesson]:
        assert re.search(rf"^## Going further: {topic}\n\n\*Optional on a first reading\.\*", source, re.M), f"{lesson}: no optional section on {topic}"
