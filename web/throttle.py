"""Login throttling: too many failures lock a name, or an address, for a while.

A name is locked after :data:`MAX_NAME_FAILURES` failed attempts within
:data:`FAILURE_WINDOW` since its last successful login, an address after
:data:`MAX_ADDRESS_FAILURES` on any names. The lock lasts :data:`LOCK_TIME`
from the last failure. Attempts made while locked are rejected unchecked and
not counted, so a lock ends on time and an attacker gets a few guesses per
window at most. Names that no user has are counted the same way, so that a
lock reveals nothing about which names exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.accounts import Accounts, Failures

FAILURE_WINDOW = timedelta(minutes=15)
LOCK_TIME = timedelta(minutes=15)
MAX_NAME_FAILURES = 5
# Higher than the per-name limit, because a team behind one office gateway
# shares an address.
MAX_ADDRESS_FAILURES = 20
# Attempts older than this are deleted when a new failure is stored.
KEEP_ATTEMPTS = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Lock:
    """A lock in force: what is locked, from when until when.

    ``subject`` is ("user", name) or ("address", address).
    """

    subject: tuple[str, str]
    started: datetime
    until: datetime


def active_lock(
    accounts: Accounts, name: str, address: str, now: datetime
) -> Lock | None:
    """Return the lock on this name or address that ends last, or None."""
    since = now - FAILURE_WINDOW
    locks = [
        (
            _lock_end(accounts.name_failures(name, since), MAX_NAME_FAILURES),
            ("user", name),
        ),
        (
            _lock_end(accounts.address_failures(address, since), MAX_ADDRESS_FAILURES),
            ("address", address),
        ),
    ]
    found = [(end, subject) for end, subject in locks if end is not None and end > now]
    if not found:
        return None
    until, subject = max(found, key=lambda pair: pair[0])
    return Lock(subject=subject, started=until - LOCK_TIME, until=until)


def record_failure(accounts: Accounts, name: str, address: str, now: datetime) -> None:
    """Count a failed attempt towards the locks of its name and address."""
    accounts.add_failed_attempt(name, address, now, keep_since=now - KEEP_ATTEMPTS)


def _lock_end(failures: Failures, limit: int) -> datetime | None:
    if failures.count < limit or failures.newest is None:
        return None
    return failures.newest + LOCK_TIME
