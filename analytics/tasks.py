"""Analytics' background and periodic work (the periodic tasks are scheduled in CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from analytics import export_jobs, figures_cache, health, reports, rollups
from loyalty.models import Program


@shared_task(name="analytics.tasks.rollup_recent")
def rollup_recent() -> dict:
    """Every 15 minutes: rebuild today's and yesterday's roll-ups, and the older sales days that changed since the
    previous run (analytics.rollups.rollup_recent); then score every partner's health in each active program from
    them (analytics.health.health_refresh), and let the dashboards know (analytics.figures_cache). Safe to run
    twice, or while the command rebuilds a range."""
    summary = rollups.rollup_recent().summary()
    summary["partners_scored"] = {
        program.slug: health.health_refresh(program=program) for program in Program.objects.filter(is_active=True)
    }
    figures_cache.roll_ups_changed()  # the dashboards compute their figures again from the new rows
    return summary


@shared_task(name="analytics.tasks.run_export")
def run_export(job_id: int) -> str:
    """Write a big export's file (queued by export_jobs.export_job_start after commit). Safe to run twice."""
    job = export_jobs.export_job_run(job_id)
    return job.status if job is not None else "not queued"


@shared_task(name="analytics.tasks.tidy_exports")
def tidy_exports() -> dict:
    """Hourly: delete the files whose download expired, and fail the jobs whose worker died."""
    return export_jobs.export_jobs_tidy()


@shared_task(name="analytics.tasks.send_reports")
def send_reports() -> int:
    """Daily: send each scheduled report whose period ended and was not sent yet (once per period)."""
    return reports.reports_send_due()
