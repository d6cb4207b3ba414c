"""Pipelining an import: a writer thread, with its own database connection holding the import's one transaction,
writes batch N while the calling thread reads, checks and evaluates batch N+1, so the database and Python work at
the same time. One prepared batch waits at most (memory: two batches in flight).
"""

from __future__ import annotations

import queue
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from django.db import connection, transaction

GIL_SWITCH_INTERVAL = 0.0005  # seconds (Python's default is 0.005)
_STOP = object()  # tells the writer thread to give up (the reading side failed)


def run_pipelined(
    batches: Iterable,
    *,
    prepare: Callable,
    write: Callable,
    begin: Callable[[], None],
    end: Callable[[], None],
    after_each: Callable[[], None],
) -> None:
    """prepare(batch) for each batch in this thread, then write(prepared) in the writer thread, inside one
    transaction opened there with begin() and closed with end(); after_each() runs in this thread (on its own
    connection: progress committed) once a batch is handed over. An error on either side rolls it all back and
    is raised here."""
    handoff: queue.Queue = queue.Queue(maxsize=1)

    def write_all() -> None:
        try:
            with transaction.atomic():
                begin()
                while (batch := handoff.get()) is not None:
                    if batch is _STOP:
                        raise RuntimeError("the import was stopped while reading the file")
                    write(batch)
                end()
        finally:
            connection.close()

    def hand_over(item) -> bool:
        """Queue an item for the writer; False when the writer has stopped (its error is raised later)."""
        while not writer.done():
            try:
                handoff.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    # The writer mostly waits for the database; after each wait it needs the GIL back from this busy thread,
    # which by default hands it over only every 5 ms. A shorter interval keeps the database fed.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sales-import") as pool:
            writer = pool.submit(write_all)
            try:
                for rows in batches:
                    if not hand_over(prepare(rows)):
                        break
                    after_each()
            except BaseException:
                hand_over(_STOP)
                raise
            hand_over(None)
            writer.result()
    finally:
        sys.setswitchinterval(interval)
