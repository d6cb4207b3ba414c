from celery import shared_task

from loyalty.services.sellout.run import api_imports_follow_up, import_run


@shared_task(name="loyalty.tasks.run_sales_import")
def run_sales_import(import_id: int) -> str:
    """Run an uploaded sell-out file (queued by services.sellout.run.import_start after commit). Safe to run twice."""
    return import_run(import_id).status


@shared_task(name="loyalty.tasks.follow_up_api_imports")
def follow_up_api_imports(source_id: int) -> int:
    """A minute after a source's first API batch: tell the members of its batches since then, evaluate the tiers
    (services.sellout.run.api_imports_follow_up). Safe to run twice."""
    return api_imports_follow_up(source_id)
