"""Writers of the replica's tables queue on the data version instead of deadlocking.

Every statement that writes patients, payments or sync_runs first replaces
the data_version token (a BEFORE STATEMENT trigger), so it takes that one
row lock before any row lock of its own. Two transactions that write the
same rows in opposite orders (a manual repair while a sync runs) then wait
for each other in turn; with the token bumped AFTER each statement they
would each hold a row the other needs, and PostgreSQL would abort one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.support.databases import migrate, scratch_database

pytestmark = pytest.mark.postgresql_only


@pytest.fixture
def committed_database(postgres_url: str) -> Iterator[sa.Engine]:
    """A migrated database of this test's own holding one committed patient and payment."""
    with scratch_database("locks") as url:
        migrate(url)
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO patients (external_id, first_name, last_name, created, updated) "
                    "VALUES ('p1', 'Ada', 'Lovelace', now(), now())"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO payments (external_id, amount, patient_id, created, updated) "
                    "SELECT 'm1', 1, id, now(), now() FROM patients"
                )
            )
        yield engine
        engine.dispose()


def test_writers_in_opposite_orders_wait_instead_of_deadlocking(
    committed_database: sa.Engine,
) -> None:
    errors: list[BaseException] = []

    def second_writer() -> None:
        try:
            with committed_database.begin() as connection:
                connection.execute(sa.text("UPDATE patients SET first_name = 'B'"))
                connection.execute(sa.text("UPDATE payments SET amount = 3"))
        except BaseException as error:  # reported to the test thread below
            errors.append(error)

    with committed_database.begin() as first:
        first.execute(sa.text("SET LOCAL deadlock_timeout = '100ms'"))
        first.execute(sa.text("UPDATE payments SET amount = 2"))
        other = threading.Thread(target=second_writer)
        other.start()
        time.sleep(0.5)  # the second writer is now waiting on the first
        first.execute(sa.text("UPDATE patients SET first_name = 'A'"))
    other.join(timeout=30)
    assert not other.is_alive()
    assert errors == []
    with committed_database.connect() as connection:
        assert connection.execute(
            sa.text("SELECT first_name, amount FROM patients, payments")
        ).one() == ("B", 3)
