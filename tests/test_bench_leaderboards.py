"""The leaderboards benchmark's pieces on tiny data (no timing is asserted: the figures come from
`python -m bench leaderboards`): the rows written set-based are the rows the services raise event by event, the
programs are built once, each page is measured at both sizes with the viewer on its board, the quiz and progress
updates are timed, and the verdicts are printed."""

from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from bench import harness, leaderboards
from loyalty.engine.facts import sale_event
from loyalty.models import ChallengeEntry, PeriodStanding
from loyalty.services.earning import post_event
from tests.partners.factories import MemberFactory, PartnerFactory

pytestmark = pytest.mark.django_db


def entry_rows(challenge) -> list[tuple]:
    goal = challenge.goals.get()
    return sorted(
        (e.member_id, e.partner_id, Decimal(str(e.progress[str(goal.pk)])), e.score, e.normalised, e.active_members)
        + (e.halfway_at is not None, e.completed_at is not None)
        for e in ChallengeEntry.objects.filter(challenge=challenge)
    )


def standing_rows(program) -> list[tuple]:
    return sorted(
        PeriodStanding.objects.filter(program=program).values_list(
            "member_id", "partner_id", "period_start", "points", "normalised", "active_members"
        ),
        key=lambda row: (row[0] or 0, row[1]),
    )


def test_the_rows_written_set_based_are_the_rows_the_services_raise_event_by_event(monkeypatch):
    monkeypatch.setattr(leaderboards, "GOAL_UNITS", 60)  # a few people reach it, most pass halfway
    partners = [PartnerFactory(), PartnerFactory()]
    people = [MemberFactory(partner=partner) for partner in partners for _ in range(3)]
    MemberFactory(partner=partners[0], status="left")  # not an active member: not counted per company
    sql_program, _ = harness.bench_program("bench-lb-sql", "SQL", started_days_ago=400)
    sql_challenge, product = leaderboards._catalogue_and_rules(sql_program)
    written = leaderboards.write_rows(
        program=sql_program, challenge=sql_challenge, member_ids=[p.pk for p in people], events=90, keep_events=True
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT p.member_id, e.quantity FROM bench_lb_events e JOIN bench_lb_people p USING (idx)")
        events = cursor.fetchall()
    by_id = {person.pk: person for person in people}

    services_program, _ = harness.bench_program("bench-lb-services", "Services", started_days_ago=400)
    services_challenge, _ = leaderboards._catalogue_and_rules(services_program)
    today = timezone.localdate()
    for n, (member_id, quantity) in enumerate(events):
        person = by_id[member_id]
        event = sale_event(
            program=services_program, source_key=f"bench-sale:{n}", partner=person.partner, product=product,
            quantity=Decimal(quantity), amount=Decimal(100 * quantity), occurred_on=today, actor=person,
        )  # fmt: skip
        post_event(program=services_program, event=event)

    assert len(events) == 90
    assert written["entries"] == written["standings_people"] == 6
    assert written["standings_companies"] == 2
    sql_entries, service_entries = entry_rows(sql_challenge), entry_rows(services_challenge)
    assert sql_entries == service_entries
    assert True in {row[6] for row in sql_entries} and True in {row[7] for row in sql_entries}  # halfway, completed
    assert [row[1:] for row in standing_rows(sql_program)] == [row[1:] for row in standing_rows(services_program)]
    assert [row[0] for row in standing_rows(sql_program)] == [row[0] for row in standing_rows(services_program)]


def test_the_programs_are_built_once_and_measured_at_both_sizes(capsys):
    for partner in PartnerFactory.create_batch(3):
        MemberFactory.create_batch(4, partner=partner)

    small = leaderboards.build(size="a", members=6, events=60, analyze=False)
    big = leaderboards.build(size="b", members=12, events=240, analyze=False)
    again = leaderboards.build(size="b", members=12, events=240, analyze=False)
    pages = leaderboards.measure_pages(sizes=["a", "b"], rounds=2, host="testserver")
    writes = leaderboards.measure_writes(size="b", samples=2)
    passed, checks = leaderboards.report({"sizes": ["a", "b"], "pages": pages, "writes": writes})

    assert (small["built"], big["built"], again["built"]) == (True, True, False)
    assert (small["members"], big["members"], big["entries"], big["companies"]) == (6, 12, 12, 3)
    for page in leaderboards.PAGES:
        a, b = pages[f"a|{page}"], pages[f"b|{page}"]
        assert a["status"] == b["status"] == 200
        assert a["viewer_on_board"] and b["viewer_on_board"]
        assert a["queries"] == b["queries"]
        assert a["requests"] == b["requests"] == 2
    assert pages["b|people"]["rank_text"] == "You are number 7 of 12."  # the middle: 12 // 2 better
    assert writes["quiz"]["passed"] == writes["quiz"]["samples"] == 2
    assert writes["progress"]["raised"] == writes["progress"]["samples"] == 2
    assert writes["quiz"]["median_db_ms"] > 0 and writes["progress"]["median_db_ms"] > 0
    assert {name for name, *_ in checks} >= {"people: queries b = a", "challenge: time b / a"}
    printed = capsys.readouterr().out
    assert "quiz submission (submit_attempt) DB time" in printed and "progress update (record_event)" in printed
    assert isinstance(passed, bool)


def test_the_report_fails_a_slow_page_and_a_write_it_could_not_measure(capsys):
    page = {"status": 200, "queries": 9, "viewer_on_board": True, "rank_text": "", "median_db_ms": 1.0}
    figures = {
        "sizes": ["1k", "100k"],
        "pages": {
            **{f"1k|{name}": {**page, "median_ms": 20.0} for name in leaderboards.PAGES},
            **{f"100k|{name}": {**page, "median_ms": 25.0} for name in leaderboards.PAGES},
            "100k|people": {**page, "median_ms": 40.0},
        },
        "writes": {
            "quiz": {"available": False, "why": "no module named loyalty.services.training"},
            "progress": {"available": True, "samples": 3, "median_db_ms": 4.2, "max_db_ms": 5.0, "queries": 4,
                         "raised": 3},
        },
    }  # fmt: skip

    passed, checks = leaderboards.report(figures)

    verdicts = {name: ok for name, _, _, ok in checks}
    assert not passed
    assert verdicts["people: time 100k / 1k"] is False  # 2.0
    assert verdicts["challenge: time 100k / 1k"] is True  # 1.25
    assert verdicts["people: queries 100k = 1k"] is True
    assert verdicts["quiz submission (submit_attempt) DB time"] is False
    assert verdicts["progress update (record_event) DB time"] is True
    assert figures["ratios"]["people"] == 2.0
    assert "not measured: no module named" in capsys.readouterr().out
