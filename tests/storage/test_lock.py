"""The job lock: one job per database, kept across a lost connection."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storage import LockHeld, Store


def end_session(store: Store, held) -> None:
    """End the server session that holds the lock, as a server restart would."""
    pid = held.connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    held.connection.commit()
    with store.engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.commit()


def test_second_lock_refused(store: Store) -> None:
    other = Store(store.engine.url.render_as_string(hide_password=False))
    try:
        with store.job_lock():
            with pytest.raises(LockHeld, match="another Fenghuo job"):
                with other.job_lock():
                    pass
        with other.job_lock():
            pass
    finally:
        other.close()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_lost_connection_retakes_lock(store: Store) -> None:
    with store.job_lock() as held:
        end_session(store, held)

        held.verify()

        assert store.held_lock is held
        assert held.connection is not None


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_lock_taken_by_other_job_stops(store: Store) -> None:
    other = Store(store.engine.url.render_as_string(hide_password=False))
    try:
        with store.job_lock() as held:
            end_session(store, held)
            with other.job_lock(), pytest.raises(LockHeld):
                held.verify()
    finally:
        other.close()
