"""Background work of the suppression list."""

from celery import shared_task
from django.db import OperationalError

from suppression.models import ImportJob


@shared_task(
    name="suppression.run_import_job",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def run_import_job(job_id: int) -> None:
    """Run a queued import. Safe to run again (a redelivered message, a retry): it resumes after
    the rows counted done, and a run already going elsewhere is left to finish."""
    from suppression import services

    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or job.status == ImportJob.Status.DONE:
        return
    services.run_import(job)
