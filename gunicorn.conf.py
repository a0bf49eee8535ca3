"""gunicorn settings; every value can be overridden from the environment.

    GUNICORN_BIND             127.0.0.1:8000   address to listen on (behind a reverse proxy)
    GUNICORN_WORKERS          2                processes; ~1-2 per core (syncs are DB-bound)
    GUNICORN_THREADS          4                threads per worker, for concurrent reads
    GUNICORN_TIMEOUT          300              seconds a request may run: a full sync of a large
                                               snapshot takes minutes, and 30 s (the default)
                                               would kill it (safe, it rolls back, but useless)
    GUNICORN_GRACEFUL_TIMEOUT 60               seconds a worker gets on SIGTERM to finish
                                               in-flight requests (a sync in progress
                                               past this is rolled back, never half-applied)
    GUNICORN_KEEPALIVE        5                seconds to keep an idle client connection open
    PROMETHEUS_MULTIPROC_DIR  (a temp dir)     where workers share their metrics for /metrics

Logs: the app writes its own JSON access line per request (without query
strings, which carry amounts), so gunicorn's access log is off and its error
log uses the same JSON format.
"""

import os
import shutil
import tempfile

from config import check_environment

# Refuse to start (one clear line, exit 1) instead of booting workers that fail.
check_environment()

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "60"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Request line and header limits guard against oversized requests before Flask
# sees them; bodies are bounded by MAX_CONTENT_LENGTH in the app.
limit_request_line = 8190
limit_request_fields = 100
# One fixed control socket path per user would clash between several servers on a host.
control_socket_disable = True
accesslog = None
errorlog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.web.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": os.environ.get("LOG_LEVEL", "INFO").upper(), "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
    },
}

# Workers are processes: their metrics meet in files that /metrics sums up.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pp-metrics-")
    _OWN_METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]
else:
    _OWN_METRICS_DIR = None


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the shared metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this config created."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(_OWN_METRICS_DIR, ignore_errors=True)
