"""The webhooks app is wired in every process: its receivers are connected once the apps are
loaded, its tasks (replay's included) are registered with the Celery app, and beat runs the sweeps."""

from __future__ import annotations

from django.conf import settings

from apps.events.signals import events_accepted
from apps.extensions.models import ChannelRelease
from apps.extensions.signals import channel_released
from apps.installs.signals import installation_changed
from config.celery import app as celery_app


def _uids(signal) -> set:
    return {key[0] for key, *_ in signal.receivers}


def test_receivers_are_connected_after_app_loading():
    assert "webhooks.fanout_on_events_accepted" in _uids(events_accepted)
    assert "webhooks.manifest_endpoints_on_release" in _uids(channel_released)
    assert "webhooks.manifest_endpoints_on_sandbox_install" in _uids(installation_changed)
    assert channel_released.has_listeners(ChannelRelease)


def test_celery_app_knows_every_webhooks_task():
    celery_app.loader.import_default_modules()
    for name in (
        "webhooks.process_dispatch",
        "webhooks.deliver_due",
        "webhooks.sweep",
        "webhooks.replay_run",
        "webhooks.replay_sweep",
    ):
        assert name in celery_app.tasks, name


def test_beat_runs_the_delivery_and_replay_sweeps():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"webhooks.sweep", "webhooks.replay_sweep"} <= tasks
    assert settings.CELERY_BEAT_SCHEDULE["webhooks.replay_sweep"]["task"] == "webhooks.replay_sweep"


def test_settings_read_by_endpoints_and_replay_have_their_defaults():
    assert settings.PLAZA_WEBHOOK_MAX_ENDPOINTS == 20
    assert settings.PLAZA_WEBHOOK_REPLAY_MAX_MESSAGES == 10_000
    assert settings.PLAZA_WEBHOOK_REPLAY_HOURLY_MESSAGES == 50_000
    assert settings.PLAZA_WEBHOOK_REPLAY_BATCH == 500
    assert settings.PLAZA_WEBHOOK_TEST_EVENTS_PER_HOUR == 60
