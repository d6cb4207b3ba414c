"""`manage.py seed_demo [--scale N] [--dry-run]`: load the demo program (DESIGN.md §6)."""

from django.core.management.base import BaseCommand, CommandError

from loyalty.common.errors import ApplicationError
from partners import demo


class Command(BaseCommand):
    help = (
        "Load the demo program: a water-treatment equipment maker's channel of ~60 partners and ~300 members "
        "per unit of --scale, with the demo logins. Idempotent: only missing parts are written, so running it "
        "again is quick and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale",
            type=int,
            default=1,
            help="Multiply partners and members: 1 gives ~60 partners and 300 members, 334 about 100,000 members.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Print what would be created; write nothing.")

    def handle(self, *args, scale: int, dry_run: bool, verbosity: int, **options):
        if scale < 1:
            raise CommandError("--scale must be at least 1.")
        # Batch by batch progress when there is more than one batch's worth, or when asked for detail.
        detailed = verbosity >= 2 or (verbosity >= 1 and scale > demo.BLOCKS_PER_BATCH)
        if detailed:
            self.stdout.write(
                f"Demo data at scale {scale}: {scale} block(s) of {demo.PARTNERS_PER_BLOCK} partners and "
                f"{demo.MEMBERS_PER_BLOCK} members{' (dry run: nothing is written)' if dry_run else ''}."
            )
        try:
            report = demo.seed_demo(scale=scale, dry_run=dry_run, progress=self.stdout.write if detailed else None)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if verbosity < 1:
            return
        if report.nothing_to_do:
            self.stdout.write(
                f"Demo data: all {scale} block(s) already present, nothing to do ({report.seconds:.1f} s)."
            )
            return
        created = ", ".join(f"{report.rows[table]:,} {table}" for table in demo.TABLES if report.rows[table])
        present = f" ({report.blocks_present} block(s) were already present)" if report.blocks_present else ""
        if dry_run:
            self.stdout.write(f"Demo data, dry run: would create {created}{present}. Nothing was written.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Demo data: created {created} in {report.seconds:.1f} s{present}."))
        if verbosity >= 2 or dry_run:
            for who, email in demo.demo_logins():
                self.stdout.write(f"  {who:<16} {email}  password: {demo.DEMO_PASSWORD}")
