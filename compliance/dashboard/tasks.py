"""Background work of the dashboard."""

from celery import shared_task

from compliance.dashboard import services


@shared_task(name="dashboard.roll_up")
def roll_up() -> dict:
    """Add the rows written since the last run to the dashboard's figures (every
    DASHBOARD_ROLL_UP_EVERY_SECONDS under celery beat). No retry: a run that fails adds nothing,
    and the next one reads the same rows. Returns the rows counted per source."""
    result = services.roll_up()
    return {"counted": result.counted, "busy": result.busy, "caught_up": result.caught_up}
