"""The Dagster instance's event log: Dagster's SQLite storage, with its connections kept.

Dagster's :class:`SqliteEventLogStorage` creates a new SQLAlchemy engine, opens the file and
commits with a full ``fsync`` for every write, and a run writes about 1,000 events (each
check result three times: the run's shard, the index shard, the check's row). Measured on
the 2-core machine: 8.7 ms per event (1.6 ms with this class); recording a run's planned
events took 3.2 s (0.75 s), the gates step 0.64 s (0.22 s). This subclass keeps one
engine per shard (the index and the most recent run shards) and sets
``synchronous=NORMAL`` on its connections, which in the WAL mode Dagster already uses
commits without waiting for the disk (SQLite stays consistent; a power cut can lose the
last events, never corrupt the file). Tables, files and everything the UI and the daemon
read are Dagster's own: only how a connection is obtained differs.

``kam`` names this class in the ``dagster.yaml`` it writes (kam_assets/cli/environment.py);
``base_dir`` is the instance folder (written in as a path), as for Dagster's default.
The class and the members overridden are private to Dagster 1.13 (pinned in pyproject.toml):
they are imported from kam_assets/dagster_private.py, and tests/dagster/test_dagster_private.py
fails, naming them, if an upgrade moves them.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from kam_assets.dagster_private import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    ConfigurableClassData,
    SqliteEventLogStorage,
)

#: run shards whose engine stays open besides the index (a webserver reads many runs)
KEPT_RUN_SHARDS = 4


def _fast_commits(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("pragma synchronous=NORMAL")
    finally:
        cursor.close()


class KamSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's run-sharded SQLite event log with pooled connections (see module doc)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, sa.engine.Engine] = OrderedDict()
        super().__init__(os.path.join(base_dir, "history", "runs", ""), inst_data)

    @classmethod  # Dagster's builds its own class by name, never a subclass
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, str]
    ) -> KamSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> sa.engine.Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = sa.create_engine(
                self.conn_string_for_shard(shard),
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                pool_size=1,
                max_overflow=4,
            )
            sa.event.listen(engine, "connect", _fast_commits)
        self._engines[shard] = engine  # most recently used last
        runs = [key for key in self._engines if key != INDEX_SHARD_NAME]
        for stale in runs[:-KEPT_RUN_SHARDS]:
            self._engines.pop(stale).dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.engine.Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _dispose_engines(self) -> None:
        while self._engines:
            self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        with self._db_lock:
            self._dispose_engines()
        super().wipe()

    def dispose(self) -> None:
        with self._db_lock:
            self._dispose_engines()
        super().dispose()
