"""Job functions for the applications in tests/test_apps.py: RQ imports them
by name in its worker process, Celery and arq register them as tasks."""

from __future__ import annotations

import os
import time


def square(n: int) -> int:
    return n * n


def slow_square(n: int, seconds: float) -> int:
    # Keeps an RQ run going long enough to restart the server in its middle.
    time.sleep(seconds)
    return n * n


def fail() -> None:
    raise ValueError("this job fails")


def fail_once(marker: str) -> str:
    """Fails the first time (leaving ``marker``), succeeds when retried."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first try fails")
    return "second try"


# -- Celery: the app reads its broker and result backend from the environment,
# so that the worker process and the test use the same server.
def celery_app(url: str):
    from celery import Celery

    app = Celery("apps_jobs", broker=url, backend=url)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        result_expires=600,
        worker_hijack_root_logger=False,
    )

    @app.task(name="add")
    def add(x, y):
        return x + y

    @app.task(name="total")
    def total(numbers):
        return sum(numbers)

    return app


if os.environ.get("KVSERVER_APPS_URL"):  # the Celery worker's `-A tests.apps_jobs`
    app = celery_app(os.environ["KVSERVER_APPS_URL"])


# -- arq: coroutine functions, the first argument arq's context.
async def arq_square(ctx, n: int) -> int:
    return n * n
