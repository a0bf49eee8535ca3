"""The synced entities, by name."""

from __future__ import annotations

from app.sync.entity import Entity
from app.sync.patients import PATIENTS_ENTITY
from app.sync.payments import PAYMENTS_ENTITY

ENTITIES: dict[str, Entity] = {entity.name: entity for entity in (PATIENTS_ENTITY, PAYMENTS_ENTITY)}
