"""Storage: the database tables, their migrations and the queries of the pipeline.

This is the only package that runs SQL. :class:`Store` keeps posts,
engagement snapshots, classifications, gradings, problems, early-warning
signals, alerts with their messages and deliveries, collector cursors and collection runs
in a SQLite file (the default) or in PostgreSQL, with the same schema on both. Alembic migrations
live in ``storage/migrations``, and :meth:`Store.migrate` applies them.

Datetimes are timezone-aware on the way in and come back in UTC. Methods
raise ValueError for invalid arguments, LookupError for an unknown alert or
run id, and ``sqlalchemy.exc.SQLAlchemyError`` subclasses for database
failures. A method that raises has written nothing.
"""

from .alert_store import StaleAlertState
from .engine import MigrationError, alembic_config, create_store_engine
from .lock import LockHeld
from .records import (
    AlertDetail,
    AlertRecord,
    AlertSummary,
    AlertUpdate,
    AttemptOutcome,
    Claimed,
    DeliveryRecord,
    IncidentFacts,
    KnownAlert,
    MessageRecord,
    NewAlert,
    NewDelivery,
    NewMessage,
    PendingMessage,
    PostRecord,
    RunRecord,
    Saved,
    SignalRecord,
    SourceStatus,
    StatusReport,
    StoredBatch,
)
from .store import Store
from .tables import DELIVERY_CHANNELS, MAIL_CHANNELS, ROBOT_CHANNELS

__all__ = [
    "DELIVERY_CHANNELS",
    "MAIL_CHANNELS",
    "ROBOT_CHANNELS",
    "AlertDetail",
    "AlertRecord",
    "AlertSummary",
    "AlertUpdate",
    "AttemptOutcome",
    "Claimed",
    "DeliveryRecord",
    "IncidentFacts",
    "KnownAlert",
    "LockHeld",
    "MessageRecord",
    "NewAlert",
    "NewDelivery",
    "NewMessage",
    "PendingMessage",
    "PostRecord",
    "RunRecord",
    "Saved",
    "SignalRecord",
    "SourceStatus",
    "StaleAlertState",
    "StatusReport",
    "StoredBatch",
    "Store",
    "MigrationError",
    "alembic_config",
    "create_store_engine",
]
