"""The benchmarks' PostgreSQL: the admin URL they connect to, and a database made afresh."""

from __future__ import annotations

import os
import subprocess

ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def recreate_database(name: str) -> None:
    """Drop the database ``name`` if it exists and create it empty."""
    subprocess.run(
        [
            "psql",
            ADMIN_URL,
            "-qc",
            f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
            "-c",
            f"CREATE DATABASE {name}",
        ],
        check=True,
        capture_output=True,
    )


def drop_database(name: str) -> None:
    """Drop the database ``name`` if it exists, closing its connections."""
    subprocess.run(
        ["psql", ADMIN_URL, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
        check=True,
        capture_output=True,
    )
