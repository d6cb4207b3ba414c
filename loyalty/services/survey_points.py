"""What the program core gives communications' surveys through its hooks (communications may not import loyalty):
the points for answering a survey, and the partners' tiers for the results by tier.

Answering a survey is a "survey answered" event of the rule engine, posted like any other: the program's rules for
it pay (with their caps, budgets, shares and versions), once per member and survey (the ledger's idempotency keys
derive from the event's source key). The survey's `points_for_answer` is the event's quantity, so a rule of 1 pt per
unit pays exactly what the survey offers; without such a rule nothing is paid (decisions #17)."""

from django.db.models import Sum
from django.utils import timezone

from loyalty.constants import EntrySource
from loyalty.engine.facts import survey_event, survey_source_key
from loyalty.engine.rules import evaluate
from loyalty.models import PartnerTier, PointsEntry, Program
from loyalty.services.earning import post_event, published_rules


def survey_answered(*, survey, member, response) -> None:
    program = Program.objects.get(pk=survey.program_id)
    event = survey_event(
        program=program, survey=survey, member=member, answered_on=timezone.localdate(response.submitted_at)
    )
    post_event(program=program, event=event, source_type=EntrySource.SURVEY)


def survey_points_offered(*, survey, member) -> int:
    """What answering `survey` would pay `member` under the rules in force today (before caps): what its pages
    promise, so that they never promise what no rule pays."""
    program = Program.objects.get(pk=survey.program_id)
    event = survey_event(program=program, survey=survey, member=member, answered_on=timezone.localdate())
    return sum(
        posting.points for posting in evaluate(event, published_rules(program)) if posting.member_id == member.pk
    )


def survey_points_paid(*, survey, member) -> int:
    """What answering `survey` paid `member` (their own account; a share for the company is not theirs)."""
    return (
        PointsEntry.objects.filter(
            source_type=EntrySource.SURVEY, source_id=survey_source_key(survey, member)[:64], account__member=member
        ).aggregate(points=Sum("available_delta") + Sum("pending_delta"))["points"]
        or 0
    )


def partner_tier_names(*, program_id: int, partner_ids: list[int]) -> dict[int, str]:
    return dict(
        PartnerTier.objects.filter(program_id=program_id, partner_id__in=partner_ids).values_list(
            "partner_id", "tier__name"
        )
    )
