"""gunicorn settings; every value can be overridden from the environment."""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A full sync of a large snapshot takes tens of seconds; the default 30 s
# would kill the worker mid-sync (which is safe, the sync rolls back, but useless).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "60"))
accesslog = "-"
errorlog = "-"
