"""The ledger under real parallel connections (threads, each with its own database connection)."""

import threading
from collections import Counter

import pytest
from django.db import connection

from loyalty.common.errors import ApplicationError
from loyalty.models import PointsAccount, PointsEntry
from loyalty.selectors.ledger import ledger_problems
from loyalty.services import ledger
from tests.loyalty.factories import MemberAccountFactory, ProgramFactory
from tests.partners.factories import MemberFactory

pytestmark = pytest.mark.django_db(transaction=True)


def run_together(count: int, work) -> None:
    """Run work(0) ... work(count - 1), each in its own thread (and database connection), started at the same
    instant; returns when every thread has finished."""
    barrier = threading.Barrier(count)

    def runner(index):
        try:
            barrier.wait()
            work(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run_in_parallel(count: int, work) -> Counter:
    """Start `count` threads at the same instant; collect what each returned or the error code it hit."""
    outcomes = Counter()
    lock = threading.Lock()

    def counted(index):
        try:
            result = work(index)
        except ApplicationError as exc:
            result = exc.code
        with lock:
            outcomes[result] += 1

    run_together(count, counted)
    return outcomes


def test_the_same_key_from_20_threads_posts_one_entry():
    account = MemberAccountFactory()
    outcomes = run_in_parallel(
        20, lambda i: ledger.earn(account=account, points=25, key="sale-line:991", source_id="991").pk
    )
    assert len(outcomes) == 1 and sum(outcomes.values()) == 20  # every caller got the same entry back
    account.refresh_from_db()
    assert (account.available, account.lifetime_earned) == (25, 25)
    assert PointsEntry.objects.count() == 1


def test_50_simultaneous_spends_on_an_account_that_affords_10_succeed_exactly_10_times():
    account = MemberAccountFactory()
    ledger.earn(account=account, points=100, key="seed")
    outcomes = run_in_parallel(50, lambda i: ledger.spend(account=account, points=10, key=f"order:{i}") and "ok")
    assert outcomes == Counter({"ok": 10, "insufficient_points": 40})
    account.refresh_from_db()
    assert (account.available, account.redeemed) == (0, 100)
    assert ledger_problems() == []


def test_first_earns_in_parallel_create_one_account():
    program = ProgramFactory()
    member = MemberFactory()

    def first_earn(i):
        account = ledger.member_account(program=program, member=member)
        ledger.earn(account=account, points=1, key=f"welcome:{i}")
        return account.pk

    outcomes = run_in_parallel(10, first_earn)
    assert len(outcomes) == 1
    assert PointsAccount.objects.get(program=program, member=member).available == 10
