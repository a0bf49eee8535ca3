"""The dlt peer of issue 21: a payments snapshot replicated the way dlt's docs say.

Runs inside bench/.dlt-venv (dlt, pyarrow, pandas; never the service's
venv), one process per step, started by bench/dlt_peer.py:

    python bench/dlt_pipeline.py SNAPSHOT --database-url URL --pipelines-dir DIR

What a data engineer would write from dlt's docs for a full-snapshot
replica that keeps history: the JSON array read into a pyarrow Table with
exact amounts (decimal128(12,2)); a resource with the ``scd2`` merge
strategy, which inserts new and changed rows as new versions and retires
(sets ``_dlt_valid_to`` on) the versions the snapshot no longer holds; the
row hash that the docs' "scd2 with Arrow tables" section asks for
(``add_row_hash_to_table`` + ``row_version_column_name``, as dlt does not
hash Arrow rows itself); loaded as CSV through COPY, the docs' fast path for
Arrow tables on postgres. The pipeline's name and ``pipelines_dir`` stay
the same across the steps of one bench run, as a scheduled job's would.

Prints one JSON line: the seconds from opening the file to the end of
``pipeline.run``, the records read, and where the time went (reading
into Arrow, then each of dlt's steps).
"""

from __future__ import annotations

import argparse
import json
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dlt
import pyarrow as pa
from dlt.sources.helpers.transform import add_row_hash_to_table

SCHEMA = pa.schema(
    [
        pa.field("externalId", pa.string(), nullable=False),
        pa.field("patientId", pa.string(), nullable=False),
        pa.field("amount", pa.decimal128(12, 2), nullable=False),
    ]
)
PIPELINE = "payments_replica"
DATASET = "replica"


def snapshot_table(path: Path) -> pa.Table:
    """The snapshot's records as an Arrow table; a record that does not fit fails the whole load."""
    with path.open("rb") as file:
        # parse_float=Decimal: a float would round 0.1 + 0.2-style amounts before Arrow sees them.
        records = json.load(file, parse_float=Decimal)
    return pa.Table.from_pylist(records, schema=SCHEMA)


def payments(table: pa.Table) -> dlt.sources.DltResource:
    """The payments resource: scd2 history keyed by externalId, versions told apart by row hash."""
    return dlt.resource(
        table,
        name="payments",
        primary_key="externalId",
        write_disposition={
            "disposition": "merge",
            "strategy": "scd2",
            "row_version_column_name": "row_hash",
        },
    ).add_map(add_row_hash_to_table("row_hash"))


def with_password(database_url: str) -> str:
    """``database_url`` with a password, as dlt's postgres credentials require one.

    The bench's server trusts local connections, so a password is never
    checked; dlt refuses a URL without one before it connects.
    """
    parts = urlsplit(database_url)
    if parts.password is not None or "@" not in parts.netloc:
        return database_url
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user}:unused@{host}"))


def run(path: Path, database_url: str, pipelines_dir: str) -> dict[str, float]:
    """Load one snapshot; the seconds it took, file read included."""
    began = time.perf_counter()
    table = snapshot_table(path)
    read = time.perf_counter() - began
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE,
        pipelines_dir=pipelines_dir,
        destination=dlt.destinations.postgres(credentials=with_password(database_url)),
        dataset_name=DATASET,
    )
    pipeline.run(payments(table), loader_file_format="csv")
    seconds = time.perf_counter() - began
    # Where the time went: the file into Arrow, then dlt's own steps (the row
    # hash runs in extract; the scd2 SQL in load).
    steps = {
        step.step: (step.finished_at - step.started_at).total_seconds()
        for step in pipeline.last_trace.steps
        if step.finished_at
    }
    return {"seconds": seconds, "records": table.num_rows, "read_s": read, **steps}


def main() -> None:
    """Command-line entry point: one step, its figures as JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--pipelines-dir", required=True)
    args = parser.parse_args()
    print(json.dumps(run(args.snapshot, args.database_url, args.pipelines_dir)))


if __name__ == "__main__":
    main()
