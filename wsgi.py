"""WSGI entry point: `gunicorn wsgi:app`, and the app `flask --app wsgi` loads."""

from app import create_app
from config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # A clear one-line reason and a non-zero exit, not a traceback.
    raise SystemExit(f"Configuration error: {error}") from None
