"""The one place that opens DuckDB: connection, per-thread cursors, migrations, SQL files."""
from __future__ import annotations

import functools
import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from ..errors import StoreError

_PKG_SQL = Path(__file__).resolve().parent.parent / "sql"        # installed wheel
_REPO_SQL = Path(__file__).resolve().parent.parent.parent / "sql"  # source checkout


def sql_dir() -> Path:
    for d in (_PKG_SQL, _REPO_SQL):
        if (d / "migrations").is_dir():
            return d
    raise StoreError(f"SQL files not found (looked in {_PKG_SQL} and {_REPO_SQL})")


@functools.cache
def load_sql(name: str) -> str:
    """Text of ``sql/queries/<name>.sql``."""
    return (sql_dir() / "queries" / f"{name}.sql").read_text()


def migrations() -> list[tuple[int, str, str]]:
    out = []
    for p in sorted((sql_dir() / "migrations").glob("*.sql")):
        m = re.match(r"^(\d+)_", p.name)
        if m:
            out.append((int(m.group(1)), p.name, p.read_text()))
    return out


@contextmanager
def temp_tables(con: duckdb.DuckDBPyConnection, **tables: pa.Table):
    """Arrow ``tables`` visible to the queries run inside the block under their keyword names."""
    for name, t in tables.items():
        con.register(name, t)
    try:
        yield con
    finally:
        for name in tables:
            con.unregister(name)


def ids_table(ids, typ: pa.DataType = pa.int64()) -> pa.Table:
    """One ``id`` column (the temp tables sel_profiles, want_series, ... of sql/queries)."""
    return pa.table({"id": pa.array(np.asarray(ids), typ)})


def pairs_table(profile_ids, labelset_ids) -> pa.Table:
    """(profile_id, labelset_id) pairs: the temp table sel_pairs of sql/queries."""
    return pa.table({"profile_id": pa.array(np.asarray(profile_ids), pa.int64()),
                     "labelset_id": pa.array(np.asarray(labelset_ids), pa.int32())})


class Database:
    """Owns the DuckDB connection. Readers get a cursor per thread; writers hold ``write_lock``."""

    def __init__(self, path: str, memory_limit: str | None = None, threads: int | None = None):
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # GROUP BY stack_id runs as a perfect hash aggregate (a direct-indexed table) while stack
        # ids fit in 20 bits (1M stacks, ~16 MiB of table); DuckDB's default stops at 12 bits
        config = {"perfect_ht_threshold": 20}
        if memory_limit:
            config["memory_limit"] = memory_limit
        if threads:
            config["threads"] = threads
        try:
            self._con = duckdb.connect(path, config=config)
        except duckdb.IOException as e:
            raise StoreError(f"cannot open store {path}: {e}") from None
        self._local = threading.local()
        self.write_lock = threading.RLock()
        self.applied: list[int] = []  # migrations applied by this open (data may need backfills)
        self._migrate()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """A cursor private to the calling thread (DuckDB connections are not thread-safe)."""
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._local.cur = self._con.cursor()
        return cur

    def _migrate(self) -> None:
        con = self._con
        con.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER, name VARCHAR, "
                    "applied_at TIMESTAMP DEFAULT current_timestamp)")
        done = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
        for version, name, text in migrations():
            if version in done:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(text)
                con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
                con.execute("COMMIT")
                self.applied.append(version)
            except Exception:
                con.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        return self.con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()[0][0]

    def checkpoint(self) -> None:
        with self.write_lock:
            self._con.execute("CHECKPOINT")

    def close(self) -> None:
        self._con.close()

    def size_bytes(self) -> int:
        if self.path == ":memory:":
            return 0
        total = 0
        for suffix in ("", ".wal"):
            p = self.path + suffix
            if os.path.exists(p):
                total += os.path.getsize(p)
        return total
