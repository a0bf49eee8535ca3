"""Query plans in tests: the nodes of an EXPLAIN plan, and the rows a scan read (PostgreSQL)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.extensions import db


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, depth first."""
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += plan_nodes(child)
    return nodes


def rows_read(app: Flask, query: sa.Select[Any], table: str, *, sorts: bool = True) -> int:
    """The most rows any one scan of ``table`` produced over all its loops (EXPLAIN ANALYZE).

    Run with the plans a large table gets (index scans, nested loops): on a
    few hundred rows the planner would rightly read everything, which says
    nothing about a million. ``sorts=False`` turns explicit sorts off too, for
    queries whose long-history plan sorts incrementally.
    """
    with app.app_context():
        sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
        methods = ["seqscan", "material", "hashjoin", "mergejoin", "bitmapscan"]
        for method in methods if sorts else [*methods, "sort"]:
            db.session.execute(sa.text(f"SET LOCAL enable_{method} = off"))
        [plan] = db.session.execute(sa.text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()
        db.session.rollback()
    return max(
        n["Actual Rows"] * n["Actual Loops"]
        for n in plan_nodes(plan["Plan"])
        if n.get("Relation Name") == table
    )
