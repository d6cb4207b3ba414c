"""`manage.py rollup --from YYYY-MM-DD --to YYYY-MM-DD [--dry-run] [--table points ...]`: rebuild the daily roll-ups
of a range of days (analytics.rollups.rollup_days), one transaction per day."""

import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from analytics.figures_cache import roll_ups_changed
from analytics.health import health_refresh
from analytics.rollups import ALL, RollupReport, check_range, check_tables, rollup_days
from loyalty.common.errors import ApplicationError
from loyalty.models import Program

# A range longer than this reports its progress at the end of each month.
PROGRESS_AFTER_DAYS = 31


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"“{text}” is not a date; write it as YYYY-MM-DD, e.g. 2025-03-31.") from None


class Command(BaseCommand):
    help = (
        "Rebuild the daily roll-ups (points, sales, claims, members, messages) of a range of days from their "
        "sources, one transaction per day. The periodic task keeps today and yesterday; use this for history or "
        "after a correction."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="first", required=True, help="First day, YYYY-MM-DD (the site's days).")
        parser.add_argument("--to", dest="last", required=True, help="Last day, YYYY-MM-DD, included.")
        parser.add_argument(
            "--table",
            dest="tables",
            action="append",
            choices=ALL,
            help="A roll-up to rebuild; repeat for several (default: all).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count the rows each day would get; write nothing.")

    def handle(self, *args, first, last, tables, dry_run, **options):
        first, last = _day(first), _day(last)
        try:
            check_range(first=first, last=last)
            tables = check_tables(tables or ALL)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        days = (last - first).days + 1
        verb = "Counting" if dry_run else "Rebuilding"
        self.stdout.write(f"{verb} {', '.join(tables)} for {days:,} day{'s' if days != 1 else ''}: {first} to {last}")
        started = time.monotonic()
        progress = self._monthly(last, started) if days > PROGRESS_AFTER_DAYS else None
        report = rollup_days(first=first, last=last, tables=tables, dry_run=dry_run, progress=progress)
        written = "would be written" if dry_run else "written"
        for table in tables:
            total = report.totals[table]
            self.stdout.write(f"  {table:<9} {total.rows:>12,} rows {written} in {total.seconds:,.1f} s")
        if not dry_run:  # the health scores are read from the roll-ups: score again from the rebuilt ones
            for program in Program.objects.filter(is_active=True):
                self.stdout.write(f"  health    {health_refresh(program=program):>12,} partners scored in {program}")
            roll_ups_changed()
        done = f"Done in {time.monotonic() - started:,.1f} s."
        self.stdout.write(self.style.SUCCESS(f"{done} Dry run: nothing was written." if dry_run else done))

    def _monthly(self, last: date, started: float):
        def progress(day: date, report: RollupReport) -> None:
            month_ends = day == last or (day.month != date.fromordinal(day.toordinal() + 1).month)
            if month_ends:
                rows = sum(total.rows for total in report.totals.values())
                self.stdout.write(f"  {day:%Y-%m} done: {rows:,} rows so far, {time.monotonic() - started:,.1f} s")

        return progress
