"""The background worker: runs every registered job in a loop.

Jobs are dotted paths in ``RECUR_WORKER_JOBS`` (settings); each is a function
taking no arguments that does one bounded round of work and returns how much it
did. Several workers may run at once: jobs coordinate through the database.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections
from django.utils.module_loading import import_string

log = logging.getLogger("recur.worker")


def jobs():
    return [import_string(path) for path in getattr(settings, "RECUR_WORKER_JOBS", [])]


def run_once() -> dict[str, int]:
    from recur.core import account

    account.forget()  # each round reads the account's settings afresh (once: they are cached for the round)
    done = {}
    for job in jobs():
        name = f"{job.__module__}.{job.__name__}"
        try:
            done[name] = job() or 0
        except Exception:  # one failing job must not stop the others
            log.exception("worker job %s failed", name)
            done[name] = -1
        finally:
            close_old_connections()
    return done


def run_forever(interval: float = 10.0, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    log.info("worker started with %d job(s), every %.0fs", len(jobs()), interval)
    while not stop.is_set():
        done = run_once()
        if not any(v > 0 for v in done.values()):
            stop.wait(interval)


def start_in_thread(interval: float = 10.0) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=run_forever, kwargs={"interval": interval, "stop": stop}, daemon=True, name="recur-worker").start()
    return stop
