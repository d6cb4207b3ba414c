"""Playing a blueprint's [scenario] through the real services: the same few generic steps for every field program,
so that a program proves itself with configuration only.

A scenario names its partners (`partners`, each a `key` with a partner kind and region, or the `legal_id` of one of
the blueprint's key accounts; one partner called "partner" by default) and its people (`members`: key, role,
partner key). Each step does one thing a person does on the site or in the back office, then checks `expect`
(available points per member key, or "company" / "company:<partner key>" for a company account), `expect_tier`
(partner key → tier name, after the daily evaluation) and `expect_refused` (a part of the message the step must be
refused with, nothing written).

Steps (`do`):
- sell: a sales claim of `lines` (sku, quantity, amount), approved by the program team;
- pass_course: every module of `course` passed with the right answers;
- refer: a referral of `company` qualified, then converted by the program team (with `deal_amount`);
- return: `quantity` units of return type `type` at collection point `point` (with `serials`), confirmed;
- co_marketing: a fund of `fund` for the partner, a request pre-approved for `approved`, claimed at `cost` with
  `other_brands` named in the advert and proof attached, reimbursed;
- redeem: `quantity` of `reward`, paid by the member or (`paid_by = "company"`) the company account;
- attend: a seat at the dated event `reward` booked, the day of the event comes, attendance recorded;
- join_club: the member (an owner) joins `tier` for a year, paying its fee;
- evaluate_tiers: the daily tier evaluation;
- challenges_settle: the challenges that have ended are settled (the day after `days_later` days).
"""

import itertools
from datetime import timedelta
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone

from loyalty.common.errors import ApplicationError
from loyalty.constants import ClaimStatus, ProofKind, ReferralStatus
from loyalty.models import CollectionPoint, Course, PartnerTier, PointsAccount, Product, Program, ReturnType, Tier
from loyalty.services import challenges, claims, comarketing, referrals, returns, tiers, training
from partners.models import Partner, Region
from rewards import services as reward_services
from rewards.constants import PaidBy
from rewards.models import Reward
from tests.partners.factories import MemberFactory, PartnerFactory, RegionFactory, role
from tests.rewards.factories import ADDRESS

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
keys = itertools.count(1)


class Scenario:
    def __init__(self, *, program: Program, blueprint: dict, manager):
        self.program, self.manager = program, manager
        self.story = blueprint["scenario"]
        self.partners: dict[str, Partner] = {}
        self.members = {}
        for spec in self.story.get("partners", [{"key": "partner"}]):
            self.partners[spec["key"]] = self._partner(spec)
        if "partner" in self.story:  # one partner described inline
            self.partners["partner"] = self._partner({"key": "partner", **self.story["partner"]})
        for spec in self.story["members"]:
            self.members[spec["key"]] = MemberFactory(
                partner=self.partners[spec.get("partner", "partner")], role=role(spec.get("role", "sales"))
            )

    @staticmethod
    def _partner(spec: dict) -> Partner:
        if "legal_id" in spec:
            return Partner.objects.get(legal_id=spec["legal_id"])
        region = Region.objects.filter(code=spec["region"]).first() if "region" in spec else None
        return PartnerFactory(kind=spec.get("kind", "dealer"), region=region or RegionFactory())

    def run(self) -> list[str]:
        """Play every step; returns what each did, for the failure message of a test."""
        done = []
        for number, step in enumerate(self.story["steps"], start=1):
            step = dict(step)
            action = getattr(self, f"_{step['do']}")
            refused = step.get("expect_refused")
            if refused:
                with transaction.atomic():
                    before = self._balances(step.get("expect", {}))
                    try:
                        action(step)
                    except ApplicationError as exc:
                        assert refused in exc.message, f"step {number}: refused with “{exc.message}”"
                    else:
                        raise AssertionError(f"step {number} ({step['do']}) was not refused")
                    assert self._balances(step.get("expect", {})) == before
            else:
                action(step)
            self._check(number, step)
            done.append(f"{number}: {step['do']}")
        return done

    # Expectations --------------------------------------------------------------------------------------------

    def _account(self, who: str) -> PointsAccount | None:
        if who == "company" or who.startswith("company:"):
            partner = self.partners[who.partition(":")[2] or "partner"]
            return PointsAccount.objects.filter(program=self.program, partner=partner).first()
        return PointsAccount.objects.filter(program=self.program, member=self.members[who]).first()

    def _balances(self, expect: dict) -> dict[str, int]:
        return {who: (account.available if (account := self._account(who)) else 0) for who in expect}

    def _check(self, number: int, step: dict) -> None:
        expected = {who: int(points) for who, points in step.get("expect", {}).items()}
        actual = self._balances(expected)
        assert actual == expected, f"step {number} ({step['do']}): points {actual}, expected {expected}"
        for key, tier_name in step.get("expect_tier", {}).items():
            held = PartnerTier.objects.filter(program=self.program, partner=self.partners[key]).first()
            assert held is not None and held.tier.name == tier_name, (
                f"step {number}: {key} holds {held.tier.name if held else 'no tier'}, expected {tier_name}"
            )

    # Steps ---------------------------------------------------------------------------------------------------

    def _sell(self, step: dict) -> None:
        lines = [
            (Product.objects.get(sku=line["sku"]), Decimal(str(line["quantity"])), Decimal(str(line["amount"])))
            for line in step["lines"]
        ]
        claim = claims.claim_submit(
            member=self.members[step["member"]],
            program=self.program,
            invoice_number=f"SCN-{next(keys)}",
            invoice_date=timezone.localdate() - timedelta(days=step.get("days_ago", 0)),
            document=SimpleUploadedFile("invoice.jpg", JPEG, content_type="image/jpeg"),
            lines=lines,
        )
        if claim.status == ClaimStatus.SUBMITTED:
            claims.claim_approve(claim=claim, actor=self.manager)

    def _pass_course(self, step: dict) -> None:
        member = self.members[step["member"]]
        course = Course.objects.get(program=self.program, title=step["course"])
        for module in course.modules.order_by("position"):
            attempt = training.start_attempt(member=member, module=module)
            answers = {
                question.pk: [choice.pk for choice in question.choices.all() if choice.is_correct]
                for question in module.questions.all()
            }
            training.submit_attempt(member=member, attempt_id=attempt.pk, answers=answers)

    def _refer(self, step: dict) -> None:
        referral = referrals.referral_submit(
            member=self.members[step["member"]],
            program=self.program,
            company_name=step["company"],
            contact_name="Pat Prospect",
            contact_email=step.get("email", f"buyer{next(keys)}@prospect.example"),
            need=step.get("need", "Wants to hear about the partner programme."),
            company_id=step.get("company_id", ""),
        )
        deal = Decimal(str(step["deal_amount"])) if "deal_amount" in step else None
        referrals.referral_transition(referral=referral, to=ReferralStatus.QUALIFIED, actor=self.manager)
        referrals.referral_transition(
            referral=referral, to=ReferralStatus.CONVERTED, actor=self.manager, deal_amount=deal
        )

    def _return(self, step: dict) -> None:
        registered = returns.return_register(
            member=self.members[step["member"]],
            program=self.program,
            return_type=ReturnType.objects.get(program=self.program, name=step["type"]),
            collection_point=CollectionPoint.objects.get(program=self.program, name=step["point"]),
            quantity=int(step["quantity"]),
            returned_on=timezone.localdate(),
            serials=step.get("serials", []),
        )
        returns.return_confirm(return_id=registered.pk, actor=self.manager)

    def _co_marketing(self, step: dict) -> None:
        member = self.members[step["member"]]
        today = timezone.localdate()
        period = comarketing.Period(today.replace(month=1, day=1), today.replace(month=12, day=31))
        comarketing.fund_set(
            program=self.program, partner=member.partner, period=period, amount=Decimal(str(step["fund"]))
        )
        request = comarketing.request_submit(
            member=member,
            program=self.program,
            title=step.get("title", "Advert in the trade press"),
            planned_on=today,
            planned_cost=Decimal(str(step["cost"])),
        )
        comarketing.request_pre_approve(request=request, actor=self.manager, amount=Decimal(str(step["approved"])))
        proofs = [
            (ProofKind.ADVERT, SimpleUploadedFile("advert.jpg", JPEG, content_type="image/jpeg")),
            (ProofKind.INVOICE, SimpleUploadedFile("bill.pdf", PDF, content_type="application/pdf")),
        ]
        comarketing.request_claim(
            request=request,
            member=member,
            actual_cost=Decimal(str(step["cost"])),
            other_brands=int(step.get("other_brands", 0)),
            proofs=proofs,
        )
        comarketing.request_reimburse(request=request, actor=self.manager)

    def _redeem(self, step: dict):
        reward = Reward.objects.get(program=self.program, name=step["reward"])
        return reward_services.order_place(
            member=self.members[step["member"]],
            program=self.program,
            items=[(reward, int(step.get("quantity", 1)))],
            paid_by=PaidBy.COMPANY if step.get("paid_by") == "company" else PaidBy.MEMBER,
            checkout_key=f"scenario-{next(keys)}",
            address=ADDRESS,
        )

    def _attend(self, step: dict) -> None:
        order = self._redeem(step)
        line = order.lines.get()
        # The day of the event comes: it started an hour ago.
        Reward.objects.filter(pk=line.reward_id).update(event_starts_at=timezone.now() - timedelta(hours=1))
        reward_services.attendance_record(line=line, actor=self.manager, attended=True)

    def _join_club(self, step: dict) -> None:
        from loyalty.services import clubs  # imported here while the clubs service is being built

        member = self.members[step["member"]]
        clubs.club_join(
            program=self.program,
            partner=member.partner,
            tier=Tier.objects.get(program=self.program, name=step["tier"]),
            member=member,
            renews_until=None,
        )

    def _evaluate_tiers(self, step: dict) -> None:
        tiers.tiers_evaluate_all(program=self.program)

    def _challenges_settle(self, step: dict) -> None:
        later = timezone.now() + timedelta(days=int(step.get("days_later", 31)))
        challenges.settle_ended_challenges(now=later)
