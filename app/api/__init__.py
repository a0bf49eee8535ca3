"""HTTP layer: one blueprint per resource, thin views."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.api.smorest import Api


def register_blueprints(api: Api) -> None:
    """Register every resource blueprint so it is routed and documented."""
    from app.api import health, metrics, patients, payments, syncs

    for module in (patients, payments, syncs, health, metrics):
        api.register_blueprint(module.bp)
