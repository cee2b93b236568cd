"""What the engine did while the load ran, counted at its source: PostgreSQL's own statistics (transactions
committed and rolled back, rows written) and the local cloud's ledger of what AWS bills. Read when the load starts
and when it ends, so the bench's own read-back afterwards is left out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from infra.local.ledger import Tally, read_from, tally

# A PostgreSQL backend publishes its counts at most once a second while busy, and an idle one within 10 s
# (PGSTAT_IDLE_INTERVAL): read after that long at rest, the counts hold everything before.
STATISTICS_SETTLE_S = 11.0

_STATISTICS = """SELECT xact_commit + xact_rollback AS transactions,
                        tup_inserted + tup_updated + tup_deleted AS row_writes
                 FROM pg_stat_database WHERE datname = current_database()"""


@dataclass
class Accounting:
    ledger_path: Path
    database_url: str | None
    settle_s: float = STATISTICS_SETTLE_S
    ledger: dict[tuple[str, str], Tally] = field(default_factory=dict)
    postgres: dict[str, int] = field(default_factory=dict)
    _offset: int = 0
    _postgres_before: dict[str, int] = field(default_factory=dict)

    def start(self) -> Accounting:
        """Call with the cloud at rest: it waits for PostgreSQL's counts to settle before reading them."""
        self._offset = self.ledger_path.stat().st_size if self.ledger_path.exists() else 0
        self._postgres_before = self._statistics()
        return self

    def stop(self) -> Accounting:
        """Call when the load ended and before anything else reads from the engine."""
        if self.ledger_path.exists():
            self.ledger = tally(read_from(self.ledger_path, self._offset))
        after = self._statistics()
        self.postgres = {name: after[name] - self._postgres_before[name] for name in after
                         if name in self._postgres_before}
        return self

    def postgres_per_order(self, orders: int) -> dict[str, float] | None:
        if not self.postgres:
            return None
        return {name: round(count / max(1, orders), 2) for name, count in self.postgres.items()}

    def _statistics(self) -> dict[str, int]:
        if not self.database_url:
            return {}
        import psycopg

        time.sleep(self.settle_s)
        try:
            with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
                conn.execute("SELECT pg_stat_clear_snapshot()")
                row = conn.execute(_STATISTICS).fetchone()
        except psycopg.Error:
            return {}
        return {} if row is None else {"transactions": int(row[0]), "row_writes": int(row[1])}
