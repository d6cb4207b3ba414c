"""The demo program's past survey: a loyalty.demo.program extension, like sales, learning and rewards.

The planner says who answered the past survey (loyalty.demo.program.SURVEY) when (Book.survey_answers, by activity
level: the demo logins all did, most silent members did not). Here it becomes real, on the points history's timeline:
communications sends it SURVEY's days ago with its questions and invitations (communications.demo.past_survey_open),
each answer is stored at its moment through communications.surveys.survey_answer, whose survey-answered hook posts
the "survey answered" event (loyalty.services.survey_points): the demo's "Survey points" rule (sales.RULES) pays
what the survey offers, once per member, into the ledger under the demo clock, as for any answer. Then it closes.
So every survey line of a statement has its answers behind it, dated when they were given.
"""

import functools
import random
from collections import Counter
from datetime import timedelta

from communications import demo as communications_demo
from loyalty.demo.program import SURVEY, Book, Step, SurveyAnswer, survey_sent_at
from partners import demo as partners_demo

TABLES = communications_demo.SURVEY_TABLES


def plan(book: Book) -> list[Step]:
    return _Survey(book).steps()


class _Survey:
    def __init__(self, book: Book):
        self.book = book
        self.rng = random.Random(f"{partners_demo.SEED}:survey")
        self.survey = None  # once sent

    def steps(self) -> list[Step]:
        sent = survey_sent_at(self.book.now)
        closes = sent + timedelta(days=SURVEY["open_days"])
        if closes >= self.book.now:
            raise AssertionError(f"the past survey closes in the future: {closes}")
        answers = sorted(self.book.survey_answers, key=lambda answer: (answer.at, answer.person.key))
        steps = [Step(sent, functools.partial(self._send, closes), Counter({"surveys": 1}))]
        for answer in answers:
            if not sent < answer.at < closes:
                raise AssertionError(f"a survey answer outside the survey's weeks: {answer.at}")
            counts = Counter({"survey responses": 1, "points entries": 1})
            steps.append(Step(answer.at, functools.partial(self._answer, answer), counts))
        steps.append(Step(closes, self._close, Counter()))
        return steps

    def _send(self, closes) -> None:
        self.survey = communications_demo.past_survey_open(
            program_id=self.book.program.pk, title=SURVEY["title"], points=SURVEY["points"], closes_at=closes
        )

    def _answer(self, answer: SurveyAnswer) -> None:
        communications_demo.past_survey_answer(survey=self.survey, member=self.book.member(answer.person), rng=self.rng)

    def _close(self) -> None:
        communications_demo.past_survey_close(survey=self.survey)
