"""Background work of the reports app."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone


@shared_task(name="fbl.check_complaint_rates")
def check_complaint_rates() -> int:
    """Judge yesterday's and today's complaint rates and tell staff about new alerts (run every
    15 minutes by beat; yesterday too, so its last hours are judged once they are counted).
    Returns how many alerts it raised."""
    from fbl import services

    today = timezone.localdate()
    judge = services.judge_complaint_rates
    raised = judge(today - timedelta(days=1)) + judge(today)
    return len(raised)
