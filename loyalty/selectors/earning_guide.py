"""What pays a member now, for the "How to earn" page: the rules in force today that pay them, each with a worked
example; the running challenges of their audience with the points for completing them; the training modules they
have not passed yet with the points passing pays. Surveys are communications' and are left out.

Every number is the rule engine's: each example is an engine.rules.Event built by engine.facts for this member —
a sale line of one unit (or the rule's minimum) of a real active product of the rule's scope, or a member event —
and evaluated by engine.rules.evaluate against the rules in force today, as services.earning.post_event would
evaluate it. Caps and budgets depend on what was paid already, so the examples are before them and the page names
them in words.

A rule negotiated for named partners (CompiledRule.partner_ids) shows only to their members, since the examples'
events carry the member's partner, and says "Special conditions for <partner>".

Who a rule can pay: the member acting (the rule's conditions on role, partner kind, tier and region hold), or a
colleague acting when the rule shares with the member's role ("a sales rep sells and names you on the claim: you get
30"). A sale's example names one colleague for each other role the rule shares with (a real colleague where the
partner has one, else a placeholder that is only shown), so the page can say what each role gets and what is left
for the company. A rule that requires a certificate is shown with the example of a certified member, saying so.

A bonus (a percentage or a multiplier) tops up what the event's base rules pay IN ALL — to every beneficiary, the
member, the colleagues named and the company account — and pays the top-up to its own beneficiaries (with no
shares: the one who acted). So its example says the base it works on ("10 % on top of the 640 points the sale pays in
all: 64 more, to you"), on a product the base rules pay for; when they pay for none of its products, the offer says
it has nothing to add to. Where the partner pools staff bonuses, the examples say the points go to the company
account.

A constant number of queries, whatever the number of rules, products, modules or challenges.
"""

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, Subquery, Window
from django.db.models.functions import Coalesce, RowNumber
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy

from loyalty.constants import AttemptStatus, ChallengeLevel, DrawStatus, RuleEvent, RuleStatus
from loyalty.engine import facts
from loyalty.engine.formulas import ONE, ZERO, formula_for
from loyalty.engine.rules import CompiledRule, Event, Participant, compile_rules, evaluate, paying_rules
from loyalty.models import (
    Certificate,
    Challenge,
    ChallengeEntry,
    ChallengeGoal,
    IncentiveRule,
    Module,
    PrizeDraw,
    Product,
    ProductLine,
    Program,
    QuizAttempt,
    QuizQuestion,
)
from loyalty.selectors.negotiated import named_partner_ids
from loyalty.selectors.training import training_source_key
from partners.constants import MemberStatus, PayoutPolicy
from partners.models import Member, Role
from partners.visibility import viewer_for

SALE_LINE = RuleEvent.SALE_LINE.value
TRAINING_PASSED = RuleEvent.TRAINING_PASSED.value
CHALLENGE_COMPLETED = RuleEvent.CHALLENGE_COMPLETED.value
# Explained in sections of their own (training, challenges), or by their app (surveys: communications).
OWN_SECTIONS = {TRAINING_PASSED, CHALLENGE_COMPLETED, RuleEvent.SURVEY_ANSWERED.value}
# Where a member does what an event of these kinds pays for: (URL name, link text).
ACTIONS = {
    RuleEvent.REFERRAL_CONVERTED.value: ("referral_new", gettext_lazy("Refer a company")),
    RuleEvent.EQUIPMENT_RETURNED.value: ("return_new", gettext_lazy("Register a return")),
    RuleEvent.CO_MARKETING_APPROVED.value: ("mdf_overview", gettext_lazy("See your co-marketing fund")),
}
# The amount of a would-be sale line (in the program's currency), when a rule reads amounts.
EXAMPLE_AMOUNT = Decimal("1000.00")
# Products tried per line for an example (the first may be taken by a higher exclusive rule).
PRODUCTS_PER_LINE = 3
FULL_SCORE = Decimal(100)
NONE: frozenset[int] = frozenset()


# What the page shows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """What a rule pays a colleague named on the example's sale (by role), for the page."""

    role_name: str
    points: int


@dataclass(frozen=True)
class Example:
    """A would-be event of this member and what the engine pays for it. The points are the shares as the rules
    split them; when the member's company pools staff bonuses, the member's go to the company account instead
    (`paid_to_you` is then 0)."""

    event: Event  # with the partner's real payout policy: what posting it would do
    product: Product | None  # the product sold, for a sale line
    quantity: int
    amount: Decimal | None  # the sale's amount, when a rule reads it or asks for a minimum
    actor_role: str  # "" when the member acts, else the role of the colleague who acts
    you: int  # what this rule pays the member
    others: tuple[Share, ...]  # what this rule pays the colleagues named on the sale
    company: int  # what this rule leaves for the company account
    total: int  # what every rule in force together pays the member for the same event
    pooled: bool
    assumes_certificate: bool  # the example supposes the one acting is certified as the rule requires
    # A bonus's base: what the event's base rules pay in all (every beneficiary), as the statement shows it; with
    # `before_tier`, the engine's figure before tier multipliers (the base rules and the bonus do not all apply the
    # tier, so the statement's figure would not give the bonus). 0: the base rules pay nothing, nothing to top up.
    base_in_all: Decimal = ZERO
    before_tier: bool = False

    @property
    def from_other_rules(self) -> int:
        return self.total - self.you

    @property
    def rule_in_all(self) -> int:
        """What this rule pays for the event to everyone: the member, the colleagues named and the company."""
        return self.you + sum(share.points for share in self.others) + self.company

    @property
    def nothing_to_add(self) -> bool:
        """A bonus whose base rules pay nothing for the example (so neither does the bonus)."""
        return self.you == 0

    @property
    def paid_to_you(self) -> int:
        """This rule's points that land in the member's own account."""
        return 0 if self.pooled else self.you

    @property
    def total_paid_to_you(self) -> int:
        return 0 if self.pooled else self.total


@dataclass(frozen=True)
class RuleOffer:
    rule: IncentiveRule
    example: Example
    is_bonus: bool
    products: tuple[str, ...]  # the rule's products by name (the first few), or
    more_products: int
    lines: tuple[str, ...]  # its product lines; neither: any product
    last_day: date | None  # the last day events count
    days_left: int | None  # after today
    certificate_line: ProductLine | None
    certified_until: date | None  # the member's certificate on that line, valid today (its last day)
    tier_name: str  # the partner's tier when its multiplier applies on top ("" otherwise)
    tier_multiplier: Decimal | None
    # A rule negotiated for named partners (the viewer's among them: others never see it): the viewer's partner.
    negotiated_for: str = ""

    @property
    def action(self) -> tuple[str, str] | None:
        """(address, link text) of the page where the member does what this rule pays for, if it has one."""
        found = ACTIONS.get(self.rule.event)
        return (reverse(found[0]), str(found[1])) if found else None

    @property
    def value(self) -> Decimal:
        """The formula's value as people write it (10, not 10.0000)."""
        return plain(self.rule.value)

    @property
    def min_quantity(self) -> Decimal | None:
        return plain(self.rule.min_quantity) if self.rule.min_quantity is not None else None

    @property
    def budget_left(self) -> int | None:
        rule = self.rule
        return max(rule.budget_points - rule.budget_used, 0) if rule.budget_points is not None else None


@dataclass(frozen=True)
class ModuleOffer:
    module: Module
    points: int  # what passing pays the member with every answer right
    points_at_pass_mark: int  # with just the pass mark (less only for rules paying per % of score)
    tried: int  # attempts submitted without passing
    closes_on: date | None
    days_left: int | None  # after today


@dataclass(frozen=True)
class ChallengeOffer:
    challenge: Challenge
    goals: tuple[ChallengeGoal, ...]
    you: int  # completing pays the member (individual challenges)
    company: int  # completing pays the company account (company challenges, or a rule's company share)
    score: Decimal  # the member's (or company's) progress so far, percent
    completed: bool
    prizes: int  # ranks with a prize
    last_day: date  # in the reader's time zone
    days_left: int  # after today

    @property
    def is_company(self) -> bool:
        return self.challenge.level == ChallengeLevel.COMPANY


@dataclass(frozen=True)
class EarningGuide:
    member: Member
    program: Program
    today: date
    pooled: bool
    tier_name: str
    tier_multiplier: Decimal | None
    sales: list[RuleOffer] = field(default_factory=list)
    bonuses: list[RuleOffer] = field(default_factory=list)
    others: list[RuleOffer] = field(default_factory=list)  # referrals, profile, co-marketing, custom events
    modules: list[ModuleOffer] = field(default_factory=list)
    challenges: list[ChallengeOffer] = field(default_factory=list)
    draws: list[PrizeDraw] = field(default_factory=list)  # open for entries, closing soonest first

    @property
    def is_empty(self) -> bool:
        return not (self.sales or self.bonuses or self.others or self.modules or self.challenges or self.draws)

    def examples(self) -> list[Example]:
        return [offer.example for offer in (*self.sales, *self.bonuses, *self.others)]


# The selector ------------------------------------------------------------------------------------------------


def earning_guide(*, viewer, program: Program, today: date | None = None) -> EarningGuide:
    """Everything that pays the viewer (a partner's member) in `program` now. Member.DoesNotExist for anyone else."""
    member = viewer_for(viewer).member
    if member is None:
        raise Member.DoesNotExist("How to earn is for partner members.")
    today = today or timezone.localdate()
    guide = _Guide(program=program, member=member, today=today)
    return guide.build()


class _Guide:
    """The reads, done once, and the examples built from them."""

    def __init__(self, *, program: Program, member: Member, today: date):
        self.program, self.member, self.today = program, member, today
        self.partner = member.partner
        self.pooled = self.partner.payout_policy == PayoutPolicy.POOLED

    # Reads (each one query) ---------------------------------------------------------------------------------

    def _load(self) -> None:
        program, partner, today = self.program, self.partner, self.today
        rows = (
            IncentiveRule.objects.filter(program=program, status__in=[RuleStatus.PUBLISHED, RuleStatus.RETIRED])
            .filter(Q(effective_until__isnull=True) | Q(effective_until__gt=timezone.now() - timedelta(days=2)))
            .select_related("requires_certification")
            .prefetch_related("roles", "tiers", "regions", "product_lines", "products")
            .annotate(named_partner_ids=named_partner_ids())
        )
        compiled = compile_rules(rows)
        self.rows = {row.pk: row for row in rows}
        self.rules = tuple(rule for rule in compiled if _in_force(rule, today))
        self.tier = facts.partner_tiers(program, [partner.pk]).get(partner.pk)
        self.roles = {role.code: role for role in Role.objects.all()}
        self.colleagues = dict(
            Member.objects.filter(partner=partner, status=MemberStatus.ACTIVE)
            .exclude(pk=self.member.pk)
            .order_by("role_id", "pk")
            .distinct("role_id")
            .values_list("role__code", "pk")
        )
        # Certificates valid today, of the member and the colleagues the examples name: {member id: line ids}, and
        # the member's own {line id: last valid day}. Looked up only when a rule in force requires one.
        self.held: dict[int, frozenset[int]] = {}
        self.certificates: dict[int, date] = {}
        if any(rule.certified_line_id is not None for rule in self.rules):
            held: dict[int, set[int]] = {}
            rows = Certificate.objects.filter(
                member_id__in=[self.member.pk, *self.colleagues.values()], issued_on__lte=today, expires_on__gt=today
            ).values_list("member_id", "product_line_id", "expires_on")
            for member_id, line_id, expires_on in rows.order_by("expires_on"):
                held.setdefault(member_id, set()).add(line_id)
                if member_id == self.member.pk:
                    self.certificates[line_id] = expires_on - timedelta(days=1)
            self.held = {member_id: frozenset(lines) for member_id, lines in held.items()}
        self.products_by_line: dict[int, list[Product]] = {}
        if any(rule.event == SALE_LINE for rule in self.rules):
            ranked = (
                Product.objects.filter(is_active=True)
                .annotate(n=Window(RowNumber(), partition_by=[F("line_id")], order_by=[F("sku").asc()]))
                .filter(n__lte=PRODUCTS_PER_LINE)
                .select_related("line")
                .order_by("line__name", "sku")
            )
            for product in ranked:
                self.products_by_line.setdefault(product.line_id, []).append(product)

    # Building ------------------------------------------------------------------------------------------------

    def build(self) -> EarningGuide:
        self._load()
        member, tier = self.member, self.tier
        modules = self._modules()
        challenges = self._challenges()
        self.sale_base = self._sale_base()
        self.member_base = None
        if modules or challenges or any(rule.event != SALE_LINE for rule in self.rules):
            self.member_base = facts.member_event(
                kind=TRAINING_PASSED,
                program=self.program,
                source_key=f"guide:{member.pk}",
                member=member,
                occurred_on=self.today,
            )
        held = self.held.get(member.pk, NONE)
        self.me = Participant(member.pk, member.role.code, member.role.name, is_actor=True, certified_line_ids=held)
        guide = EarningGuide(
            member=member,
            program=self.program,
            today=self.today,
            pooled=self.pooled,
            tier_name=tier.tier.name if tier else "",
            tier_multiplier=plain(tier.tier.multiplier) if tier else None,
        )
        for rule in self.rules:
            if rule.event in OWN_SECTIONS:
                continue
            offer = self._offer(rule)
            if offer is None:
                continue
            if rule.event != SALE_LINE:
                guide.others.append(offer)
            elif offer.is_bonus:
                guide.bonuses.append(offer)
            else:
                guide.sales.append(offer)
        for offers in (guide.sales, guide.bonuses, guide.others):
            offers.sort(key=_most_first)
        guide.modules.extend(self._module_offers(modules))
        guide.challenges.extend(self._challenge_offers(challenges))
        guide.draws.extend(
            PrizeDraw.objects.filter(
                program=self.program, status=DrawStatus.OPEN, opens_at__lte=timezone.now(), closes_at__gt=timezone.now()
            ).order_by("closes_at", "pk")
        )
        return guide

    def _sale_base(self) -> Event | None:
        product = next((products[0] for products in self.products_by_line.values()), None)
        if product is None:
            return None
        return facts.sale_event(
            program=self.program,
            source_key=f"guide:{self.member.pk}",
            partner=self.partner,
            product=product,
            quantity=Decimal(1),
            amount=EXAMPLE_AMOUNT,
            occurred_on=self.today,
            actor=self.member,
            tier=self.tier,
        )

    def _colleague(self, role_code: str, *, index: int, is_actor: bool = False) -> Participant:
        """A colleague in `role_code` with their certificates: a real one where the partner has one, else a
        placeholder (a negative id, never posted; no certificates known)."""
        role = self.roles.get(role_code)
        name = role.name if role is not None else role_code
        member_id = self.colleagues.get(role_code, -1 - index)
        lines = self.held.get(member_id, NONE)
        return Participant(member_id, role_code, name, is_actor=is_actor, certified_line_ids=lines)

    # Rules -------------------------------------------------------------------------------------------------

    def _offer(self, rule: CompiledRule) -> RuleOffer | None:
        example = self._sale_example(rule) if rule.event == SALE_LINE else self._member_example(rule)
        if example is None:
            return None
        row = self.rows[rule.id]
        products = sorted(p.name for p in row.products.all() if p.is_active)
        last_day = _last_day(rule)
        line = row.requires_certification
        applies_tier = rule.apply_tier_multiplier and self.tier is not None and self.tier.tier.multiplier != 1
        return RuleOffer(
            rule=row,
            example=example,
            is_bonus=rule.points_formula.is_bonus,
            products=tuple(products[:3]),
            more_products=max(len(products) - 3, 0),
            lines=tuple(sorted(line.name for line in row.product_lines.all())),
            last_day=last_day,
            days_left=(last_day - self.today).days if last_day else None,
            certificate_line=line,
            certified_until=self.certificates.get(line.pk) if line else None,
            tier_name=self.tier.tier.name if applies_tier else "",
            tier_multiplier=plain(self.tier.tier.multiplier) if applies_tier else None,
            negotiated_for=self.partner.name if rule.partner_ids else "",
        )

    def _sale_example(self, rule: CompiledRule) -> Example | None:
        if self.sale_base is None:
            return None
        me, idle = self.me, None
        if rule.matches_who(self.sale_base, me.role_code):
            example = self._best_paying(rule, actor=me)
            if example is not None and not example.nothing_to_add:
                return example
            idle = example
        if any(code == me.role_code for code, _ in rule.shares):
            actor_role = self._acting_role(rule)
            if actor_role is not None:
                colleague = self._colleague(actor_role, index=len(self.roles), is_actor=True)
                example = self._best_paying(rule, actor=colleague, named=replace(me, is_actor=False))
                if example is not None and not example.nothing_to_add:
                    return example
                idle = idle or example
        return idle

    def _acting_role(self, rule: CompiledRule) -> str | None:
        """The role of a colleague whose sale the rule pays (someone other than the member's role)."""
        mine = self.me.role_code
        allowed = [code for code in self.roles if code != mine and (not rule.roles or code in rule.roles)]
        for code in allowed:
            if rule.matches_who(self.sale_base, code):
                return code
        return None

    def _candidates(self, rule: CompiledRule) -> list[Product]:
        if rule.product_ids:
            row = self.rows[rule.id]
            products = sorted(
                (p for p in row.products.all() if p.is_active and rule.matches_product(p.pk, p.line_id)),
                key=lambda p: p.sku,
            )
            return products[:PRODUCTS_PER_LINE]
        return [
            product
            for line_id, products in self.products_by_line.items()
            if not rule.line_ids or line_id in rule.line_ids
            for product in products
        ]

    def _best_paying(self, rule: CompiledRule, *, actor: Participant, named: Participant | None = None):
        """The example of the candidate product the rule pays the member most for (the first of equals); for a bonus
        none of whose candidates the base rules pay for, the first one's, with nothing to add; else None."""
        me = named or actor
        cert_line = rule.certified_line_id
        assumes = cert_line is not None and cert_line not in actor.certified_line_ids
        if assumes:  # the example of one who holds the certificate the rule requires
            actor = replace(actor, certified_line_ids=actor.certified_line_ids | {cert_line})
        people = [actor] + ([named] if named is not None else [])
        present = {person.role_code for person in people}
        for index, (code, _) in enumerate(rule.shares):
            if code not in present:
                people.append(self._colleague(code, index=index))
                present.add(code)
        quantity = max(Decimal(1), (rule.min_quantity or Decimal(1)).to_integral_value(rounding=ROUND_CEILING))
        amount = max(EXAMPLE_AMOUNT, rule.min_amount or EXAMPLE_AMOUNT)
        best = idle = None
        base_pays = False
        for product in self._candidates(rule):
            event = replace(
                self.sale_base,
                source_key=f"guide:{self.member.pk}:r{rule.id}:{product.pk}",
                product_id=product.pk,
                line_id=product.line_id,
                quantity=quantity,
                amount=amount,
                participants=tuple(people),
                pooled=False,
                certificates_known=True,
            )
            example = self._example(rule, event, me, product=product, actor=actor, assumes=assumes)
            if example is None:
                base_pays = True  # (a bonus is None only when its base rules pay, but not the member)
                continue
            if example.nothing_to_add:
                idle = idle or example
            elif best is None or example.you > best.you:
                best = example
        return best or (None if base_pays else idle)

    def _member_example(self, rule: CompiledRule) -> Example | None:
        """A referral, a completed profile, a co-marketing claim or a custom event of the member's own."""
        if self.member_base is None or not _matches_who_for(rule, self.member_base, self.me.role_code):
            return None
        quantity = max(Decimal(1), (rule.min_quantity or Decimal(1)).to_integral_value(rounding=ROUND_CEILING))
        actor, cert_line = self.me, rule.certified_line_id
        assumes = cert_line is not None and cert_line not in actor.certified_line_ids
        if assumes:
            actor = replace(actor, certified_line_ids=actor.certified_line_ids | {cert_line})
        event = replace(
            self.member_base,
            kind=rule.event,
            custom_event=rule.custom_event,
            source_key=f"guide:{self.member.pk}:r{rule.id}",
            quantity=quantity,
            amount=max(EXAMPLE_AMOUNT, rule.min_amount or EXAMPLE_AMOUNT),
            unit="units",
            subject="",
            participants=(actor,),
            pooled=False,
            certificates_known=True,
        )
        return self._example(rule, event, self.me, product=None, actor=actor, assumes=assumes)

    def _example(self, rule, event, me, *, product, actor, assumes) -> Example | None:
        """What `event` pays the member `me` by `rule`, or None when nothing; for a bonus rule, also when its base
        rules pay nothing at all (an example with nothing to add, `you` 0)."""
        postings = evaluate(event, self.rules)
        you = sum(p.points for p in postings if p.rule_id == rule.id and p.member_id == me.member_id)
        paying = paying_rules(event, self.rules)
        base_in_all, before_tier = ZERO, False
        if rule.points_formula.is_bonus:
            base_in_all, before_tier = _bonus_base(rule, event, paying, postings)
        if you <= 0 and not (rule.points_formula.is_bonus and base_in_all == 0 and rule in paying):
            return None
        names = {person.member_id: person.role_name for person in event.participants}
        others = tuple(
            Share(names.get(p.member_id, ""), p.points)
            for p in postings
            if p.rule_id == rule.id and p.member_id is not None and p.member_id != me.member_id
        )
        reads_amount = any(formula_for(r.formula).reads_amount or r.min_amount is not None for r in paying)
        return Example(
            event=replace(event, pooled=self.pooled),
            product=product,
            quantity=int(event.quantity),
            amount=event.amount if product is not None and reads_amount else None,
            actor_role="" if actor.member_id == me.member_id else actor.role_name,
            you=you,
            others=others,
            company=sum(p.points for p in postings if p.rule_id == rule.id and p.member_id is None),
            total=sum(p.points for p in postings if p.member_id == me.member_id),
            pooled=self.pooled,
            assumes_certificate=assumes,
            base_in_all=base_in_all,
            before_tier=before_tier,
        )

    # Training ----------------------------------------------------------------------------------------------

    def _modules(self) -> list[Module]:
        """The published modules for the member's role and partner kind, not passed, that can still be taken."""
        member, today = self.member, self.today
        mine = QuizAttempt.objects.filter(member=member, module=OuterRef("pk"))
        tries = (
            mine.exclude(status=AttemptStatus.STARTED).order_by().values("module").annotate(n=Count("pk")).values("n")
        )
        modules = (
            Module.objects.filter(course__program=self.program, course__is_published=True)
            .filter(Q(course__closes_on__isnull=True) | Q(course__closes_on__gte=today))
            .filter(Q(course__partner_kinds=[]) | Q(course__partner_kinds__contains=[self.partner.kind]))
            .filter(Q(course__roles__isnull=True) | Q(course__roles=member.role_id))
            .filter(Exists(QuizQuestion.objects.filter(module=OuterRef("pk"))))
            .exclude(Exists(mine.filter(status=AttemptStatus.PASSED)))
            .annotate(tries=Coalesce(Subquery(tries), 0))
            .select_related("course__product_line")
            .order_by("course__position", "course__title", "position", "pk")
        )
        return [m for m in modules if m.attempts_allowed is None or m.tries < m.attempts_allowed]

    def _module_offers(self, modules: list[Module]) -> list[ModuleOffer]:
        offers = []
        for module in modules:
            event = replace(
                self.member_base,
                kind=TRAINING_PASSED,
                source_key=training_source_key(module.pk, self.member.pk),
                quantity=FULL_SCORE,
                unit="% score",
                subject=f"module “{module.title}”",
                participants=(self.me,),
                pooled=False,
                certificates_known=True,
            )
            points = self._points_for_me(event)
            at_mark = self._points_for_me(replace(event, quantity=Decimal(module.pass_percent)))
            course = module.course
            if points <= 0 and not course.certification_months:
                continue
            offers.append(
                ModuleOffer(
                    module=module,
                    points=points,
                    points_at_pass_mark=at_mark,
                    tried=module.tries,
                    closes_on=course.closes_on,
                    days_left=(course.closes_on - self.today).days if course.closes_on else None,
                )
            )
        return offers

    def _points_for_me(self, event: Event) -> int:
        return sum(p.points for p in evaluate(event, self.rules) if p.member_id == self.member.pk)

    # Challenges --------------------------------------------------------------------------------------------

    def _challenges(self) -> list[Challenge]:
        """The published challenges running now whose audience the member belongs to."""
        now = timezone.now()
        running = (
            Challenge.objects.filter(program=self.program, is_published=True, starts_at__lte=now, ends_at__gt=now)
            .prefetch_related(
                "roles",
                "tiers",
                "regions",
                Prefetch("goals", queryset=ChallengeGoal.objects.select_related("product_line")),
                "prizes",
            )
            .order_by("ends_at", "pk")
        )
        partner, tier_id = self.partner, self.tier.tier_id if self.tier else None
        mine = []
        for challenge in running:
            roles = {role.pk for role in challenge.roles.all()}
            tiers = {tier.pk for tier in challenge.tiers.all()}
            regions = {region.pk for region in challenge.regions.all()}
            if roles and self.member.role_id not in roles:
                continue
            if challenge.partner_kinds and partner.kind not in challenge.partner_kinds:
                continue
            if tiers and tier_id not in tiers or regions and partner.region_id not in regions:
                continue
            mine.append(challenge)
        return mine

    def _challenge_offers(self, challenges: list[Challenge]) -> list[ChallengeOffer]:
        if not challenges:
            return []
        entries = {}
        for entry in ChallengeEntry.objects.filter(challenge__in=challenges).filter(
            Q(member=self.member) | Q(member__isnull=True, partner=self.partner)
        ):
            entries[(entry.challenge_id, entry.member_id is None)] = entry
        offers = []
        for challenge in challenges:
            company_level = challenge.level == ChallengeLevel.COMPANY
            who = f"p{self.partner.pk}" if company_level else f"m{self.member.pk}"
            event = replace(
                self.member_base,
                kind=CHALLENGE_COMPLETED,
                custom_event=challenge.code,
                source_key=f"challenge:{challenge.pk}:{who}",
                quantity=Decimal(challenge.completion_points),
                unit="pts offered",
                subject=f"challenge “{challenge.name}”",
                participants=() if company_level else (self.me,),
                pooled=False,
                certificates_known=True,
            )
            postings = evaluate(event, self.rules) if challenge.completion_points else []
            entry = entries.get((challenge.pk, company_level))
            last_day = timezone.localdate(challenge.ends_at - timedelta(microseconds=1))
            offers.append(
                ChallengeOffer(
                    challenge=challenge,
                    goals=tuple(challenge.goals.all()),
                    you=sum(p.points for p in postings if p.member_id == self.member.pk),
                    company=sum(p.points for p in postings if p.member_id is None),
                    score=entry.score if entry else Decimal(0),
                    completed=bool(entry and entry.completed_at),
                    prizes=len(challenge.prizes.all()),
                    last_day=last_day,
                    days_left=(last_day - self.today).days,
                )
            )
        return offers


def plain(number: Decimal) -> Decimal:
    """A decimal without trailing zeros or an exponent (10.0000 → 10, 1.20 → 1.2), for the page to localise."""
    number = Decimal(number)
    return number.quantize(Decimal(1)) if number == number.to_integral_value() else number.normalize()


def _most_first(offer: RuleOffer):
    return (-offer.example.you, offer.rule.name)


def _bonus_base(bonus: CompiledRule, event: Event, paying: list[CompiledRule], postings) -> tuple[Decimal, bool]:
    """What a bonus rule tops up for `event`: (the points its base rules pay in all, before tiers?). The engine's
    bonus is its percentage (or multiple) of the base rules' points before the tier multiplier, to which the bonus's
    own tier multiplier is then applied. When the base rules and the bonus all apply the partner's tier alike (or the
    tier is 1), that is the percentage of what the base rules post, the statement's figure: that figure. Otherwise
    the engine's own, said to be before tier multipliers."""
    base = [rule for rule in paying if not rule.points_formula.is_bonus]
    if event.tier_multiplier == ONE or all(rule.apply_tier_multiplier == bonus.apply_tier_multiplier for rule in base):
        ids = {rule.id for rule in base}
        return Decimal(sum(p.points for p in postings if p.rule_id in ids)), False
    raw = sum((rule.points_formula.points(rule.value, event, ZERO)[0] for rule in base), ZERO)
    return plain(raw), True


def _matches_who_for(rule: CompiledRule, base: Event, role: str) -> bool:
    return rule.matches_who(replace(base, kind=rule.event, custom_event=rule.custom_event), role)


def _in_force(rule: CompiledRule, day: date) -> bool:
    """The rule's dates let it pay for an event of `day` (the engine's own date conditions)."""
    if rule.effective_from and day < rule.effective_from or rule.effective_until and day >= rule.effective_until:
        return False
    return not (rule.valid_from and day < rule.valid_from or rule.valid_until and day > rule.valid_until)


def _last_day(rule: CompiledRule) -> date | None:
    """The last day an event counts for the rule: its sales window's or its version's end, whichever is first."""
    ends = [day for day in (rule.valid_until, rule.effective_until and rule.effective_until - timedelta(days=1)) if day]
    return min(ends) if ends else None
