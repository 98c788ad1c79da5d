from celery import shared_task

from compliance import audit
from compliance.dsr import deadline_alerts, services
from compliance.dsr.models import DataSubjectRequest


@shared_task(name="dsr.carry_out")
def carry_out(request_id: int) -> None:
    """Carry out one verified request (an erasure resumes where it stopped)."""
    request = DataSubjectRequest.objects.filter(pk=request_id).first()
    if request is not None:
        with audit.acting_as(audit.Actor(label="data-subject requests", via="system")):
            services.carry_out(request)


@shared_task(name="dsr.sweep")
def sweep() -> int:
    """Close requests nobody verified in time, and retry verified ones not yet carried out
    (say the database was down when they were verified)."""
    with audit.acting_as(audit.Actor(label="data-subject requests", via="system")):
        services.expire_unverified()
        waiting = DataSubjectRequest.objects.filter(
            status__in=[DataSubjectRequest.Status.VERIFIED, DataSubjectRequest.Status.IN_PROGRESS],
            kind__in=["access", "erasure", "objection"],
        )
        count = 0
        for request in waiting:
            services.carry_out(request)
            count += 1
    return count


@shared_task(name="dsr.sweep_deadlines")
def sweep_deadlines() -> int:
    """Mail staff about open requests whose deadline state rose (due soon, overdue); see
    compliance.dsr.deadline_alerts. No retry: a sweep that fails records nothing, and the next
    one finds the same requests."""
    return deadline_alerts.sweep()
