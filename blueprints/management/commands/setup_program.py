"""`manage.py setup_program <name> [--program SLUG] [--name NAME] --by EMAIL`: build a field program from its
blueprint (blueprints/programs/<name>.toml). `--list` names them."""

from django.core.management.base import BaseCommand, CommandError

from blueprints.building import program_build
from blueprints.loading import blueprint_choices
from loyalty.common.errors import ApplicationError
from loyalty.models import Program
from partners.models import User


class Command(BaseCommand):
    help = "Set up a field program from configuration: a new program, or an empty one given with --program."

    def add_arguments(self, parser):
        parser.add_argument("blueprint", nargs="?", help="The field program, e.g. cruise_line_agents (see --list).")
        parser.add_argument("--list", action="store_true", help="List the field programs there are.")
        parser.add_argument("--program", help="Slug of an existing, empty program to set up instead of a new one.")
        parser.add_argument("--name", default="", help="Name of the new program (default: the blueprint's title).")
        parser.add_argument("--by", help="E-mail of the program manager who publishes the rules (default: the first).")

    def handle(self, *args, blueprint, list, program, name, by, **options):
        if list or not blueprint:
            for code, title in blueprint_choices():
                self.stdout.write(f"{code:32} {title}")
            return
        managers = User.objects.filter(is_active=True, staff_role="program_manager").order_by("pk")
        actor = managers.filter(email__iexact=by).first() if by else managers.first()
        if actor is None:
            raise CommandError(f"No active program manager {by or 'exists'}: create one first (createsuperuser).")
        target = None
        if program:
            target = Program.objects.filter(slug=program).first()
            if target is None:
                raise CommandError(f"No program with the slug “{program}”.")
        try:
            built = program_build(name=blueprint, actor=actor, program=target, program_name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        counts = ", ".join(
            f"{count} {label}"
            for label, count in (
                ("tiers", built.tiers.count()),
                ("rules", built.rules.count()),
                ("rewards", built.rewards.count()),
                ("courses", built.courses.count()),
                ("challenges", built.challenges.count()),
            )
        )
        self.stdout.write(self.style.SUCCESS(f"Set up {built.name} (/{built.slug}): {counts}."))
