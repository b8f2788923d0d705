"""A certification check for the worker-crash test (tests/certification/test_worker_crash.py): it
takes a few seconds, so a test can kill the worker while it runs, and it notes each start in the
file named by ``PLAZA_TEST_SLOW_CHECK_LOG`` so the test can see when a worker is inside it."""

from __future__ import annotations

import os
import time

from apps.certification.checks import Check, CheckContext, CheckOutcome

LOG_ENV = "PLAZA_TEST_SLOW_CHECK_LOG"
SECONDS_ENV = "PLAZA_TEST_SLOW_CHECK_SECONDS"


class SlowCheck(Check):
    id = "slow"
    title = "Slow (test only)"

    def run(self, ctx: CheckContext) -> CheckOutcome:
        log = os.environ.get(LOG_ENV)
        if log:
            with open(log, "a") as fh:
                fh.write(f"{os.getpid()} {time.time():.3f} {ctx.run_id}\n")
        time.sleep(float(os.environ.get(SECONDS_ENV, "3")))
        return CheckOutcome("Slept.")
