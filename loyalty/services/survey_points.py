"""What the program core gives communications' surveys through its hooks (communications may not import loyalty):
the points for answering a survey, and the partners' tiers for the results by tier.

Answering pays `points_for_answer` straight into the member's account through the ledger, once per survey and
member (the ledger's idempotency key); not through the rule engine (no "survey answered" rule type yet)."""

from loyalty.constants import EntrySource
from loyalty.models import PartnerTier
from loyalty.services.ledger import earn, member_account


def survey_answered(*, survey, member, response) -> None:
    if survey.points_for_answer <= 0:
        return
    earn(
        account=member_account(program=survey.program_id, member=member),
        points=survey.points_for_answer,
        key=f"survey:{survey.pk}:{member.pk}",
        source_type=EntrySource.SURVEY,
        source_id=str(survey.pk),
        explanation=f"Answered the survey “{survey.title}”",
    )


def partner_tier_names(*, program_id: int, partner_ids: list[int]) -> dict[int, str]:
    return dict(
        PartnerTier.objects.filter(program_id=program_id, partner_id__in=partner_ids).values_list(
            "partner_id", "tier__name"
        )
    )
