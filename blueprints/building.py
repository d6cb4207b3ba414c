"""Building a program from a blueprint (blueprints.loading): the program's settings, then its key accounts, catalogue,
tiers, courses, rewards, challenges, returns, draws and rules, all or nothing.

A section's keys are the model's own field names, so a blueprint reads like the admin's forms and needs no code of
its own. Values are converted the way a form would: decimals from strings or numbers, dates and moments relative to
the day of building ("+30d", "-1d", "+14d 18:00"), relations by their natural key — a role, region or product line
by code, a product by SKU, a tier by name, a partner by legal id, a reward category by slug, a course by title. Every
row is validated (full_clean) before it is saved, rules go through the rule services (checked, then published by
the person building, who approves negotiated ones), draws are opened by the draw service (their seed's hash
published), challenges are checked like the admin checks them. A wrong key or value is refused with the section and
row it is in, and nothing is written.

Shared rows (regions, roles, product lines, products, reward categories, key-account partners, account managers) are
looked up first and created only when missing, so two programs of one manufacturer share their catalogue."""

import re
from collections.abc import Callable
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.text import slugify

from blueprints.loading import blueprint_load
from loyalty.common.errors import ApplicationError
from loyalty.models import (
    Challenge,
    ChallengeGoal,
    ChallengePrize,
    CollectionPoint,
    Course,
    IncentiveRule,
    Module,
    Product,
    ProductLine,
    Program,
    QuizChoice,
    QuizQuestion,
    ReturnType,
    Tier,
)
from loyalty.models import PrizeDraw as Draw
from loyalty.services import challenges as challenge_services
from loyalty.services import draws as draw_services
from loyalty.services import rules as rule_services
from partners.constants import PartnerStatus, StaffRole
from partners.models import Partner, Region, Role, User
from rewards import services as reward_services
from rewards.admin_forms import RewardAdminForm
from rewards.models import Reward, RewardCategory

RELATIVE = re.compile(r"^(?P<days>[+-]\d+)d(?: (?P<hour>\d{1,2}):(?P<minute>\d{2}))?$")
# What makes a program not empty: the admin action sets up only a program that has none of these yet.
CONTENTS = (Tier, IncentiveRule, Reward, Course, Challenge, ReturnType, CollectionPoint, Draw)


class Problem(ApplicationError):
    pass


def program_is_empty(program: Program) -> bool:
    return not any(model.objects.filter(program=program).exists() for model in CONTENTS)


@transaction.atomic
def program_build(*, name: str, actor, program: Program | None = None, program_name: str = "") -> Program:
    """Build the blueprint `name` into a new program (called `program_name`, else the blueprint's title) or into
    `program`, which must be empty (its name and slug stay). `actor` publishes the rules: a program manager."""
    if not getattr(actor, "is_program_manager", False):
        raise Problem("Only program managers set up programs.")
    blueprint = blueprint_load(name)
    if program is not None and not program_is_empty(program):
        raise Problem(f"{program.name} already has tiers, rules or rewards: a field program is set up on an empty one.")
    return _Builder(blueprint, actor=actor).build(program=program, program_name=program_name or blueprint["title"])


class _Builder:
    def __init__(self, blueprint: dict, *, actor):
        self.blueprint = blueprint
        self.actor = actor
        self.today = timezone.localdate()
        self.tiers: dict[str, Tier] = {}
        self.courses: dict[str, Course] = {}

    def build(self, *, program: Program | None, program_name: str) -> Program:
        for row in self._rows("regions"):
            Region.objects.get_or_create(code=row["code"], defaults={"name": row["name"], **_rest(row, "code", "name")})
        for row in self._rows("roles"):
            Role.objects.get_or_create(code=row["code"], defaults={"name": row["name"], **_rest(row, "code", "name")})
        self.program = self._program(program, program_name)
        for index, row in enumerate(self._rows("product_lines")):
            if not ProductLine.objects.filter(code=row["code"]).exists():
                self._make(ProductLine, row, f"product_lines[{index}]")
        for index, row in enumerate(self._rows("products")):
            if not Product.objects.filter(sku=row["sku"]).exists():
                self._make(Product, row, f"products[{index}]")
        for index, row in enumerate(self._rows("partners")):
            if not Partner.objects.filter(legal_id=row["legal_id"]).exists():
                row = {"status": PartnerStatus.ACTIVE, "joined_on": self.today, **row}
                self._make(Partner, row, f"partners[{index}]")
        for index, row in enumerate(self._rows("tiers")):
            self.tiers[row["name"]] = self._make(Tier, row, f"tiers[{index}]", program=self.program)
        for row in self._rows("reward_categories"):
            RewardCategory.objects.get_or_create(slug=row["slug"], defaults=_rest(row, "slug"))
        # Courses before rewards: a reward reserved for certified members names a line a course certifies on.
        for index, row in enumerate(self._rows("courses")):
            self._course(row, f"courses[{index}]")
        for index, row in enumerate(self._rows("rewards")):
            self._reward(row, f"rewards[{index}]")
        for index, row in enumerate(self._rows("challenges")):
            self._challenge(row, f"challenges[{index}]")
        for index, row in enumerate(self._rows("return_types")):
            self._make(ReturnType, row, f"return_types[{index}]", program=self.program)
        for index, row in enumerate(self._rows("collection_points")):
            self._make(CollectionPoint, row, f"collection_points[{index}]", program=self.program)
        for index, row in enumerate(self._rows("rules")):
            self._rule(row, f"rules[{index}]")
        for index, row in enumerate(self._rows("draws")):
            draw = self._make(Draw, row, f"draws[{index}]", program=self.program)
            if draw.opens_at <= timezone.now():
                draw_services.draw_open(draw=draw)
        return self.program

    def _rows(self, section: str) -> list[dict]:
        return [dict(row) for row in self.blueprint.get(section, [])]

    # Each kind of row ----------------------------------------------------------------------------------------

    def _program(self, program: Program | None, program_name: str) -> Program:
        settings = {"starts_on": "+0d", **self.blueprint.get("program", {})}
        if program is None:
            settings = {"name": program_name, "slug": _unique_slug(program_name), **settings}
            return self._make(Program, settings, "program")
        for key, value in settings.items():
            setattr(program, key, self._value(self._field(Program, key, "program"), value, "program"))
        self._save(program, "program")
        return program

    def _reward(self, row: dict, where: str) -> Reward:
        """Checked by the admin's own reward form (a price of at least 1 point, a code reward's stock, a dated event's
        kind, the reason of a negotiated reward...), which approves a negotiated one in the builder's name."""
        codes = row.pop("codes", [])
        fields, m2m = self._split(Reward, row, where)
        blank = Reward(program=self.program)
        data = {"program": self.program.pk}
        for name in RewardAdminForm._meta.fields:
            if name in m2m:
                data[name] = [item.pk for item in m2m[name]]
            elif name in fields:
                value = fields[name]
                data[name] = value.pk if isinstance(value, models.Model) else value
            elif name not in data and not Reward._meta.get_field(name).many_to_many:
                default = getattr(blank, Reward._meta.get_field(name).attname)
                data[name] = [] if name == "allowed_partner_kinds" else default
        form = RewardAdminForm(data=data)
        if not form.is_valid():
            problems = [f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()]
            raise Problem(f"{where}: {' '.join(problems)}")
        form.stamp_negotiated(self.actor)
        reward = form.save()
        if codes:
            reward_services.codes_add(reward=reward, codes=codes)
        return reward

    def _course(self, row: dict, where: str) -> Course:
        modules = row.pop("modules", [])
        course = self._make(Course, {"is_published": True, **row}, where, program=self.program)
        self.courses[course.title] = course
        for number, module_row in enumerate(modules):
            module_row = dict(module_row)
            questions = module_row.pop("questions", [])
            module = self._make(Module, {"position": number, **module_row}, f"{where}.modules[{number}]", course=course)
            for q_number, question_row in enumerate(questions):
                question_row = dict(question_row)
                choices, correct = question_row.pop("choices"), set(question_row.pop("correct"))
                there = f"{where}.modules[{number}].questions[{q_number}]"
                question = self._make(QuizQuestion, {"position": q_number, **question_row}, there, module=module)
                QuizChoice.objects.bulk_create(
                    QuizChoice(question=question, text=text, is_correct=position in correct, position=position)
                    for position, text in enumerate(choices)
                )
        return course

    def _challenge(self, row: dict, where: str) -> Challenge:
        goals, prizes = row.pop("goals", []), row.pop("prizes", [])
        challenge = self._make(
            Challenge, {"is_published": True, "code": slugify(row["name"])[:50], **row}, where, program=self.program
        )
        for number, goal in enumerate(goals):
            self._make(ChallengeGoal, {"position": number, **goal}, f"{where}.goals[{number}]", challenge=challenge)
        for number, prize in enumerate(prizes):
            self._make(ChallengePrize, prize, f"{where}.prizes[{number}]", challenge=challenge)
        drafts = [
            challenge_services.GoalDraft(
                metric=goal.metric,
                target=goal.target,
                product_line_id=goal.product_line_id,
                event=goal.event,
                custom_event=goal.custom_event,
            )
            for goal in challenge.goals.all()
        ]
        try:
            challenge_services.validate_challenge(
                challenge=challenge,
                goals=drafts,
                role_ids=list(challenge.roles.values_list("pk", flat=True)),
                prizes=[(prize.points or None, prize.description) for prize in challenge.prizes.all()],
            )
        except ApplicationError as exc:
            raise Problem(f"{where}: {exc.message}") from exc
        return challenge

    def _rule(self, row: dict, where: str) -> IncentiveRule:
        fields, m2m = self._split(IncentiveRule, row, where)
        rule = IncentiveRule(program=self.program, **fields)
        try:
            rule_services.rule_draft_save(rule=rule)
            for name, values in m2m.items():
                getattr(rule, name).set(values)
            return rule_services.rule_publish(rule=rule, actor=self.actor)
        except ApplicationError as exc:
            raise Problem(f"{where}: {exc.message}") from exc
        except ValidationError as exc:
            raise Problem(f"{where}: {_messages(exc)}") from exc

    # Rows from a section's keys ------------------------------------------------------------------------------

    def _make(self, model: type[models.Model], row: dict, where: str, **fixed) -> models.Model:
        fields, m2m = self._split(model, row, where)
        instance = model(**fixed, **fields)
        self._save(instance, where)
        for name, values in m2m.items():
            getattr(instance, name).set(values)
        return instance

    def _save(self, instance: models.Model, where: str) -> None:
        try:
            instance.full_clean()
        except ValidationError as exc:
            raise Problem(f"{where}: {_messages(exc)}") from exc
        instance.save()

    def _split(self, model, row: dict, where: str) -> tuple[dict, dict]:
        """The row's plain and foreign-key values, and its many-to-many ones (set after saving)."""
        fields, m2m = {}, {}
        for key, value in row.items():
            field = self._field(model, key, where)
            if field.many_to_many:
                m2m[key] = [self._related(field, item, where) for item in value]
            elif field.is_relation:
                fields[key] = None if value == "" else self._related(field, value, where)
            else:
                fields[key] = self._value(field, value, where)
        return fields, m2m

    @staticmethod
    def _field(model, key: str, where: str):
        try:
            field = model._meta.get_field(key)
        except FieldDoesNotExist:
            raise Problem(f"{where}: “{key}” is not a field of {model._meta.verbose_name}.") from None
        if field.auto_created and not field.concrete:
            raise Problem(f"{where}: “{key}” is not a field of {model._meta.verbose_name}.")
        return field

    def _value(self, field, value, where: str):
        if isinstance(field, models.DecimalField | models.FloatField) and not isinstance(value, Decimal):
            try:
                return Decimal(str(value))
            except InvalidOperation:
                raise Problem(f"{where}: {field.name} must be a number, not “{value}”.") from None
        if isinstance(field, models.DateField) and isinstance(value, str) and RELATIVE.match(value):
            match = RELATIVE.match(value)
            day = self.today + timedelta(days=int(match["days"]))
            if isinstance(field, models.DateTimeField):
                moment = time(int(match["hour"] or 0), int(match["minute"] or 0))
                return timezone.make_aware(datetime.combine(day, moment))
            return day
        return value

    def _related(self, field, key, where: str):
        """The row a relation names by its natural key."""
        model = field.related_model
        lookups: dict[type, Callable] = {
            Role: lambda: Role.objects.get(code=key),
            Region: lambda: Region.objects.get(code=key),
            ProductLine: lambda: ProductLine.objects.get(code=key),
            Product: lambda: Product.objects.get(sku=key),
            Partner: lambda: Partner.objects.get(legal_id=key),
            RewardCategory: lambda: RewardCategory.objects.get(slug=key),
            Tier: lambda: self.tiers[key],
            Course: lambda: self.courses[key],
            User: lambda: _account_manager(key),
        }
        if model not in lookups:
            raise Problem(f"{where}: {field.name} cannot be set from a blueprint.")
        try:
            return lookups[model]()
        except (KeyError, model.DoesNotExist):
            raise Problem(f"{where}: {field.name} names “{key}”, which does not exist.") from None


def _account_manager(email: str) -> User:
    """The account manager with this e-mail address; a new one signs in after resetting the password."""
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email, staff_role=StaffRole.ACCOUNT_MANAGER)
    if user.staff_role != StaffRole.ACCOUNT_MANAGER:
        raise KeyError(email)
    return user


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "program"
    slug, number = base, 1
    while Program.objects.filter(slug=slug).exists():
        number += 1
        slug = f"{base}-{number}"
    return slug


def _rest(row: dict, *keys: str) -> dict:
    return {key: value for key, value in row.items() if key not in keys}


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return " ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
    return " ".join(exc.messages)
