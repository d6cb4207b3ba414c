from celery import shared_task

from .services import ledger


@shared_task
def expire_due_points() -> int:
    """Daily: expire lots past their date, one transaction per account. Safe to run twice."""
    return ledger.expire_due()


@shared_task
def release_due_points() -> int:
    """Hourly: make pending points available once their hold period is over."""
    return ledger.release_due()


@shared_task
def run_sales_import(import_id: int) -> str:
    """Run an uploaded sell-out file (queued by services.imports.import_start after commit). Safe to run twice."""
    from .services.imports import import_run

    return import_run(import_id).status


@shared_task
def evaluate_tiers() -> dict[str, int]:
    """Daily: re-evaluate every partner's tier in each active program (downgrades wait for the end of the
    period). Evaluating twice the same day changes nothing the second time."""
    from .models import Program
    from .services.tiers import tiers_evaluate_all

    totals = {"evaluated": 0, "assigned": 0, "upgraded": 0, "downgraded": 0}
    for program in Program.objects.filter(is_active=True).order_by("pk"):
        result = tiers_evaluate_all(program=program)
        for key in totals:
            totals[key] += getattr(result, key)
    return totals


@shared_task
def evaluate_partner_tier(program_id: int, partner_id: int) -> None:
    """Right after points or sales land (an approved claim): upgrade at once if the partner now qualifies."""
    from partners.models import Partner

    from .models import Program
    from .services.tiers import tier_evaluate

    tier_evaluate(program=Program.objects.get(pk=program_id), partner=Partner.objects.get(pk=partner_id))
