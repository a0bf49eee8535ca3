"""HTTP layer: one blueprint per resource, thin views."""

from __future__ import annotations

from app.api import analytics, health, metrics, patients, payments, syncs
from app.web.smorest import Api


def register_blueprints(api: Api) -> None:
    """Register every resource blueprint so it is routed and documented."""
    for module in (patients, payments, syncs, analytics, health, metrics):
        api.register_blueprint(module.bp)
