from celery import shared_task

from loyalty.models import Program
from loyalty.services import tier_notices
from loyalty.services.tiers import tier_evaluate, tiers_evaluate_all
from partners.models import Partner


@shared_task(name="loyalty.tasks.evaluate_tiers")
def evaluate_tiers() -> dict[str, int]:
    """Daily: re-evaluate every partner's tier in each active program (downgrades wait for the end of the
    period). Evaluating twice the same day changes nothing the second time."""
    totals = {"evaluated": 0, "assigned": 0, "upgraded": 0, "downgraded": 0}
    for program in Program.objects.filter(is_active=True).order_by("pk"):
        result = tiers_evaluate_all(program=program)
        for key in totals:
            totals[key] += getattr(result, key)
    return totals


@shared_task(name="loyalty.tasks.evaluate_partner_tier")
def evaluate_partner_tier(program_id: int, partner_id: int) -> None:
    """Right after points or sales land (an approved claim): upgrade at once if the partner now qualifies."""
    tier_evaluate(program=Program.objects.get(pk=program_id), partner=Partner.objects.get(pk=partner_id))


@shared_task(name="loyalty.tasks.warn_tier_keep")
def warn_tier_keep() -> int:
    """Daily: the members of partners short of keeping their tier hear what is missing, once per period."""
    return tier_notices.warn_tier_keep()
