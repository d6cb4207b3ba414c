from celery import shared_task

from loyalty.services.sellout.run import import_run


@shared_task(name="loyalty.tasks.run_sales_import")
def run_sales_import(import_id: int) -> str:
    """Run an uploaded sell-out file (queued by services.sellout.run.import_start after commit). Safe to run twice."""
    return import_run(import_id).status
