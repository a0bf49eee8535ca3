"""Patient Payments replica: a faithful, queryable copy of an external system's patients and
payments, fed by full snapshots. ``create_app`` (app/factory.py) builds the Flask app."""

from app.factory import create_app

__all__ = ["create_app"]
