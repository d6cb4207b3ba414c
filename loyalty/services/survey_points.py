"""What the program core gives communications' surveys through its hooks (communications may not import loyalty):
the points for answering a survey, and the partners' tiers for the results by tier.

Answering a survey is a "survey answered" event of the rule engine, posted like any other: the program's rules for
it pay (with their caps, budgets, shares and versions), once per member and survey (the ledger's idempotency keys
derive from the event's source key). The survey's `points_for_answer` is the event's quantity, so a rule of 1 pt per
unit pays exactly what the survey offers; without such a rule nothing is paid (decisions #17)."""

from django.utils import timezone

from loyalty.constants import EntrySource
from loyalty.engine.facts import survey_event
from loyalty.models import PartnerTier, Program
from loyalty.services.earning import post_event


def survey_answered(*, survey, member, response) -> None:
    program = Program.objects.get(pk=survey.program_id)
    event = survey_event(
        program=program, survey=survey, member=member, answered_on=timezone.localdate(response.submitted_at)
    )
    post_event(program=program, event=event, source_type=EntrySource.SURVEY)


def partner_tier_names(*, program_id: int, partner_ids: list[int]) -> dict[int, str]:
    return dict(
        PartnerTier.objects.filter(program_id=program_id, partner_id__in=partner_ids).values_list(
            "partner_id", "tier__name"
        )
    )
