"""Before a period ends, the active members of a partner hear what it still needs to keep its tier: the partners
whose tier (above the entry tier) is held until within NOTICE_DAYS and whose last evaluated metric is below the
tier's threshold. Once per partner and period (the source key names the day the tier is held until); the daily
task loyalty.tasks.warn_tier_keep."""

from datetime import date, timedelta

from django.db.models import Exists, F, OuterRef
from django.urls import reverse
from django.utils import timezone

from communications.constants import Kind
from communications.services import Notice, notify_many
from loyalty.models import ClubMembership, PartnerTier, Program
from loyalty.services.tiers import EVALUATED_PARTNER_STATUSES, describe_metric, program_tiers
from partners.constants import MemberStatus
from partners.models import Member

NOTICE_DAYS = 30


def warn_tier_keep(*, today: date | None = None) -> int:
    """Tell the members of every partner short of keeping its tier at the end of the period; returns how many
    notices were made (told before or not)."""
    today = today or timezone.localdate()
    made = 0
    for program in Program.objects.filter(is_active=True).order_by("pk"):
        tiers = program_tiers(program)
        if len(tiers) < 2:  # the entry tier is never lost
            continue
        paid_on = ClubMembership.objects.filter(
            program=program,
            partner=OuterRef("partner"),
            tier=OuterRef("tier"),
            starts_on__lte=OuterRef("held_until"),
            ends_on__gt=OuterRef("held_until"),
        )
        short = (
            PartnerTier.objects.filter(
                program=program,
                held_until__range=(today, today + timedelta(days=NOTICE_DAYS)),
                metric_value__lt=F("tier__threshold"),
                partner__status__in=EVALUATED_PARTNER_STATUSES,
            )
            .exclude(tier=tiers[0])
            .exclude(Exists(paid_on))  # a paid year running past the period end keeps the tier anyway
            .values_list("partner_id", "tier__name", "tier__threshold", "metric_value", "held_until")
        )
        rows = {partner_id: row for partner_id, *row in short}
        members = Member.objects.filter(partner_id__in=list(rows), status=MemberStatus.ACTIVE).order_by("pk")
        notices = []
        for member_id, partner_id in members.values_list("pk", "partner_id"):
            tier, threshold, metric, held_until = rows[partner_id]
            variables = {
                "tier": tier,
                "missing": describe_metric(program, threshold - metric),
                "period_end": held_until,
            }
            key = f"tier_keep:{program.pk}:{partner_id}:{held_until.isoformat()}"
            notices.append(Notice(member_id, key, variables))
        notify_many(kind=Kind.TIER_KEEP, notices=notices, link_path=reverse("home"))
        made += len(notices)
    return made
