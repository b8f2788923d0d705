from celery import shared_task

from apps.accounts.services import user_sessions_sweep


@shared_task(name="accounts.sweep_sessions")
def sweep_sessions() -> int:
    """Close tracked sessions that expired on their own (periodic, see CELERY_BEAT_SCHEDULE)."""
    return user_sessions_sweep()
