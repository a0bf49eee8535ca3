"""WSGI entry point: `gunicorn wsgi:app`, and the app `flask --app wsgi` loads."""

from app import create_app
from config import ConfigError, refusal

try:
    app = create_app()
except ConfigError as error:
    raise refusal(error) from None
