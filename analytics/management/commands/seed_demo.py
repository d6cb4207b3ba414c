"""`manage.py seed_demo [--scale N] [--dry-run]`: load the demo program (DESIGN.md §6).

It lives in analytics, the one app that may import every other: the channel comes from partners.demo, the
program and its points history from loyalty.demo.program, and the rewards catalogue, events and orders from
rewards.demo, which puts its orders on loyalty.demo.program's timeline, as loyalty.demo.surveys puts a past survey
(sent and answered through communications); communications.demo adds campaigns, an open survey, feedback and tips.

The messages the seeding sends (e-mail, SMS) go to in-memory outboxes, not to the console: they are really sent
(their deliveries say "sent"), but printing hundreds of them would bury the command's own output.
"""

from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings
from django.utils import timezone

from analytics import health, rollups
from communications import demo as communications_demo
from integrations.demo import seed_demo_integration
from loyalty.common.errors import ApplicationError
from loyalty.demo import activities as demo_activities
from loyalty.demo import clubs as demo_clubs
from loyalty.demo import learning as demo_learning
from loyalty.demo import program as loyalty_demo
from loyalty.demo import sales as demo_sales
from loyalty.demo import surveys as demo_surveys
from loyalty.models import PointsEntry, Program
from partners import demo as partners_demo
from rewards import demo as rewards_demo

# The seeding's e-mails are sent to an in-memory outbox (see the module's docstring).
QUIET_MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


def _count(n: int, label: str) -> str:
    if n == 1:
        label = label[:-3] + "y" if label.endswith("ies") else label.removesuffix("s")
    return f"{n:,} {label}"


def _roll_up_history() -> rollups.RollupReport:
    """The roll-ups of every day from the demo's first ledger entry to today."""
    first = PointsEntry.objects.order_by("created_at").values_list("created_at", flat=True).first()
    today = timezone.localdate()
    return rollups.rollup_days(first=timezone.localdate(first) if first else today, last=today)


class Command(BaseCommand):
    help = (
        "Load the demo program: a water-treatment equipment maker's channel of ~60 partners and ~300 members "
        "per unit of --scale, with the demo logins; the AquaPro Partner Club with the points history of the first "
        "60 partners, products, tiers, incentive rules, a year of sell-out and claims, a rewards catalogue and "
        "orders. Idempotent: only missing parts are written, so running it again is quick and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale",
            type=int,
            default=1,
            help="Multiply partners and members: 1 gives ~60 partners and 300 members, 334 about 100,000 members. "
            "Only the first 60 partners get points history.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Print what would be created; write nothing.")

    def handle(self, *args, scale: int, dry_run: bool, verbosity: int, **options):
        if scale < 1:
            raise CommandError("--scale must be at least 1.")
        # Batch by batch progress when there is more than one batch's worth, or when asked for detail.
        detailed = verbosity >= 2 or (verbosity >= 1 and scale > partners_demo.BLOCKS_PER_BATCH)
        progress = self.stdout.write if detailed else None
        if detailed:
            self.stdout.write(
                f"Demo data at scale {scale}: {scale} block(s) of {partners_demo.PARTNERS_PER_BLOCK} partners and "
                f"{partners_demo.MEMBERS_PER_BLOCK} members{' (dry run: nothing is written)' if dry_run else ''}."
            )
        try:
            with override_settings(MAILERS=QUIET_MAILERS, SMS_URL="locmem://"):
                channel = partners_demo.seed_demo(scale=scale, dry_run=dry_run, progress=progress)
                program = loyalty_demo.seed_program(
                    dry_run=dry_run,
                    progress=progress,
                    extensions=(demo_sales, demo_learning, demo_surveys, rewards_demo, demo_activities),
                )
                program_id = Program.objects.filter(slug=loyalty_demo.PROGRAM_SLUG).values_list("pk", flat=True)
                if not (dry_run or program.present):  # the paid year is paid from the company points earned above
                    demo_clubs.seed_club_memberships(Program.objects.get(pk=program_id.first()))
                if not dry_run:  # the demo ERP as a machine client of the API, on the demo's sell-out source
                    seed_demo_integration(
                        program_slug=loyalty_demo.PROGRAM_SLUG,
                        source_code=demo_sales.SOURCE_CODE,
                        registered_by_email=dict(partners_demo.demo_logins())["Program manager"],
                    )
                # The demo campaigns and survey reach every active member: at a benchmark's --scale that would be
                # 100,000 messages sent while seeding, so they are the first scale's only.
                communications = (
                    communications_demo.seed_communications(
                        program_id=program_id.first(), dry_run=dry_run, progress=progress
                    )
                    if scale == 1
                    else None
                )
                # The dashboards read the daily roll-ups (the periodic task keeps them): sum the demo's history now.
                rolled = None if dry_run or program.present else _roll_up_history()
                if rolled is not None:  # and the partners' health, which the task scores after the roll-ups
                    health.health_refresh(program=Program.objects.get(pk=program_id.first()))
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if verbosity < 1:
            return
        self._report_channel(channel, scale=scale, dry_run=dry_run)
        self._report_program(program)
        self._report_communications(communications)
        if rolled is not None:
            rows = sum(total.rows for total in rolled.totals.values())
            days = len({day for by_day in rolled.days.values() for day in by_day})
            self.stdout.write(f"Demo roll-ups: {rows:,} rows for {days:,} days.")
        if verbosity >= 2 or dry_run:
            for who, email in partners_demo.demo_logins():
                self.stdout.write(f"  {who:<16} {email}  password: {partners_demo.DEMO_PASSWORD}")

    def _report_communications(self, report: communications_demo.CommunicationsReport | None) -> None:
        if report is None:
            self.stdout.write("Demo communications: only at --scale 1 (the campaigns would reach every member).")
            return
        if report.present:
            self.stdout.write("Demo communications: already present, nothing to do.")
            return
        created = ", ".join(
            _count(report.rows[label], label) for label, _model in communications_demo.TABLES if report.rows[label]
        )
        if report.dry_run:
            self.stdout.write(f"Demo communications, dry run: would create about {created}. Nothing was written.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Demo communications: created {created} in {report.seconds:.1f} s."))

    def _report_channel(self, report: partners_demo.SeedReport, *, scale: int, dry_run: bool) -> None:
        if report.nothing_to_do:
            self.stdout.write(
                f"Demo data: all {scale} block(s) already present, nothing to do ({report.seconds:.1f} s)."
            )
            return
        created = ", ".join(f"{report.rows[table]:,} {table}" for table in partners_demo.TABLES if report.rows[table])
        present = f" ({report.blocks_present} block(s) were already present)" if report.blocks_present else ""
        if dry_run:
            self.stdout.write(f"Demo data, dry run: would create {created}{present}. Nothing was written.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Demo data: created {created} in {report.seconds:.1f} s{present}."))

    def _report_program(self, report: loyalty_demo.ProgramReport) -> None:
        name = loyalty_demo.PROGRAM_NAME
        if report.present:
            self.stdout.write(f"Demo program: {name} already present, nothing to do.")
            return
        created = ", ".join(_count(report.rows[table], table) for table in report.tables if report.rows[table])
        if report.added:
            verb = "would add about" if report.dry_run else "added"
            self.stdout.write(
                f"Demo program: {name} was there; {verb} {created or 'nothing'} ({report.seconds:.1f} s)."
            )
            return
        if report.dry_run:
            self.stdout.write(f"Demo program, dry run: would create {name} with about {created}. Nothing was written.")
        else:
            message = f"Demo program: created {name} with {created} in {report.seconds:.1f} s."
            self.stdout.write(self.style.SUCCESS(message))
