"""A SQLite online store with one row per (entity, feature view), written in bulk.

Feast's stock ``SqliteOnlineStore`` keeps one row per (entity, feature) and upserts
them one ``execute`` at a time: ~80 rows and ~80 Python protobuf objects per customer.
This subclass keeps the same file, connection handling and ``feature_store.yaml``
options, but stores each entity's features of one view as a single serialized
``feast.types.RepeatedValue`` (names in a small schema table), so that

- materialization (through :meth:`write_arrow`, called by
  :class:`features.feast_ext.engine.PortraitComputeEngine`) encodes whole Arrow columns
  at once and upserts with ``executemany`` in one transaction per call;
- a read is one indexed row per entity and view, parsed in C (upb);
- an upsert never replaces a newer row with an older one (``event_ts`` guard), and a
  partial row (a push of some features only) is merged into the stored one.

Configure with ``online_store: {type: features.feast_ext.sqlite_store.PortraitSqliteOnlineStore,
path: ...}``. WAL journaling lets readers (the service) keep reading the previous
snapshot while a batch is being written: they see the old or the new batch, not half.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from itertools import repeat
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Sequence

import pyarrow as pa
import pyarrow.compute as pc
from feast import Entity, FeatureView
from feast import utils as feast_utils
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import compute_table_id
from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import RepeatedValue
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig

from features.feast_ext.encode import entity_key_bytes, repeated_value_bytes
from features.feast_ext.response import feature_vectors

_SCHEMA_TABLE = "portrait_online_schema"


class PortraitSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """Same options as Feast's SQLite store, plus the bulk write chunk size."""

    type: Literal["features.feast_ext.sqlite_store.PortraitSqliteOnlineStore"] = (  # type: ignore[assignment]
        "features.feast_ext.sqlite_store.PortraitSqliteOnlineStore"
    )
    write_chunk_rows: int = 50_000  # rows encoded per chunk (bounds memory, not transactions)


def _schema(table: FeatureView) -> tuple[int, list[str], list[Any]]:
    names = [f.name for f in table.features]
    types = [f.dtype.to_value_type() for f in table.features]
    sig = "\n".join(f"{n}:{t.name}" for n, t in zip(names, types))
    return zlib.crc32(sig.encode()), names, types


def _us(ts: datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return int(ts.timestamp() * 1_000_000)


def _metrics_on() -> bool:
    """Whether Feast's online metrics are enabled (then feature statuses are counted, as stock does)."""
    try:
        from feast.metrics import _config

        return bool(_config.online_features)
    except Exception:  # metrics extras missing: nothing to count
        return False


class PortraitSqliteOnlineStore(SqliteOnlineStore):
    """Feast online store: SQLite, one row per entity and feature view (see module doc)."""

    _names: dict[tuple[str, int], list[str]] | None = None

    # -- connection and tables -------------------------------------------------
    def _get_conn(self, config: RepoConfig) -> sqlite3.Connection:
        if not self._conn:
            path = Path(self._get_db_path(config))
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA page_size=32768")  # applies to a new file only: ~50 wide rows per page, fewer splits
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-262144")  # 256 MB page cache: bulk upserts stay in memory
            conn.execute(f"CREATE TABLE IF NOT EXISTS {_SCHEMA_TABLE} "
                         "(tbl TEXT, schema_id INTEGER, names TEXT, PRIMARY KEY (tbl, schema_id))")
            self._conn = conn
        return self._conn

    def _reader(self, config: RepoConfig) -> sqlite3.Connection:
        """This thread's query-only connection (WAL: reads see whole committed batches, never wait)."""
        cached = self.__dict__.get("_db_path")
        if cached is None or cached[0] is not config:
            cached = self.__dict__["_db_path"] = (config, str(self._get_db_path(config)))
        path = cached[1]
        local = self.__dict__.setdefault("_local", threading.local())
        conns = local.__dict__.setdefault("conns", {})
        key = (os.getpid(), path)  # a forked worker opens its own
        conn = conns.get(key)
        if conn is None:
            if not Path(path).exists():
                return self._get_conn(config)  # creates the file and its schema table
            conn = sqlite3.connect(path, isolation_level=None, cached_statements=256)
            conn.execute("PRAGMA query_only=1")
            conn.execute("PRAGMA mmap_size=1073741824")  # page reads from the OS cache without a copy
            conns[key] = conn
        return conn

    @staticmethod
    def _table(config: RepoConfig, table: FeatureView) -> str:
        return compute_table_id(config.project, table, config.registry.enable_online_feature_view_versioning) + "__wide"

    def update(self, config: RepoConfig, tables_to_delete: Sequence[FeatureView],
               tables_to_keep: Sequence[FeatureView], entities_to_delete: Sequence[Entity],
               entities_to_keep: Sequence[Entity], partial: bool) -> None:
        conn = self._get_conn(config)
        for table in tables_to_keep:
            conn.execute(f'CREATE TABLE IF NOT EXISTS "{self._table(config, table)}" (entity_key BLOB PRIMARY KEY, '
                         "event_ts INTEGER NOT NULL, schema_id INTEGER NOT NULL, payload BLOB NOT NULL) WITHOUT ROWID")
        for table in tables_to_delete:
            name = self._table(config, table)
            conn.execute(f'DROP TABLE IF EXISTS "{name}"')
            conn.execute(f"DELETE FROM {_SCHEMA_TABLE} WHERE tbl = ?", (name,))

    def plan(self, config: RepoConfig, desired_registry_proto: Any) -> list:
        return []  # tables are created by update(); Feast's SqliteTable objects would create the stock layout

    def _register_schema(self, conn: sqlite3.Connection, tbl: str, schema_id: int, names: list[str]) -> None:
        conn.execute(f"INSERT OR IGNORE INTO {_SCHEMA_TABLE} VALUES (?, ?, ?)", (tbl, schema_id, "\n".join(names)))
        (self._names if self._names is not None else {}).setdefault((tbl, schema_id), names)

    def _names_of(self, conn: sqlite3.Connection, tbl: str, schema_id: int) -> list[str]:
        if self._names is None:
            self._names = {}
        key = (tbl, schema_id)
        if key not in self._names:
            row = conn.execute(f"SELECT names FROM {_SCHEMA_TABLE} WHERE tbl = ? AND schema_id = ?", key).fetchone()
            self._names[key] = row[0].split("\n") if row else []
        return self._names[key]

    def _upsert(self, conn: sqlite3.Connection, tbl: str, rows: Any) -> None:
        conn.executemany(
            f'INSERT INTO "{tbl}" VALUES (?, ?, ?, ?) ON CONFLICT(entity_key) DO UPDATE SET '
            "event_ts = excluded.event_ts, schema_id = excluded.schema_id, payload = excluded.payload "
            "WHERE excluded.event_ts >= event_ts", rows)

    # -- bulk path (materialization) --------------------------------------------
    def write_arrow(self, config: RepoConfig, table: FeatureView, data: pa.Table,
                    progress: Optional[Callable[[int], Any]] = None) -> int:
        """Upsert every row of ``data`` (join key, timestamp field, all features) in one transaction.

        Rows must be unique per entity (materialization dedups to the latest row).
        Returns the number of rows written.
        """
        if len(table.entity_columns) != 1:
            raise NotImplementedError(f"{table.name}: bulk writes support single-key entities only")
        join_key = table.entity_columns[0].name
        ts_field = table.batch_source.timestamp_field
        missing = [c for c in [join_key, ts_field, *(f.name for f in table.features)] if c not in data.column_names]
        if missing:
            raise ValueError(f"{table.name}: rows to write lack column(s) {missing}")
        conn = self._get_conn(config)
        tbl = self._table(config, table)
        schema_id, names, types = _schema(table)
        step = config.online_store.write_chunk_rows
        keys = entity_key_bytes(join_key, data.column(join_key))
        order = pc.sort_indices(keys)  # B-tree inserts in key order touch each page once

        def encode(start: int) -> list[tuple]:
            idx = order.slice(start, step)
            chunk = data.select([ts_field, *names]).take(idx)
            ts = pc.cast(chunk.column(ts_field), pa.timestamp("us", tz="UTC")).cast(pa.int64())
            payload = repeated_value_bytes([chunk.column(n) for n in names], types)
            return list(zip(keys.take(idx).to_pylist(), ts.to_pylist(), repeat(schema_id, len(idx)),
                            payload.to_pylist()))

        # encode chunk k+1 on a second thread while SQLite stores chunk k (numpy and sqlite3 release the GIL)
        with ThreadPoolExecutor(max_workers=1) as pool:
            starts = list(range(0, data.num_rows, step))
            pending = pool.submit(encode, starts[0]) if starts else None
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._register_schema(conn, tbl, schema_id, names)
                for k in range(len(starts)):
                    rows = pending.result()
                    pending = pool.submit(encode, starts[k + 1]) if k + 1 < len(starts) else None
                    self._upsert(conn, tbl, rows)
                    if progress:
                        progress(len(rows))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return data.num_rows

    # -- Feast's row API (push, write_to_online_store, stock engines) ----------
    def online_write_batch(self, config: RepoConfig, table: FeatureView,
                           data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, Optional[datetime]]],
                           progress: Optional[Callable[[int], Any]]) -> None:
        conn = self._get_conn(config)
        tbl = self._table(config, table)
        schema_id, names, _ = _schema(table)
        version = config.entity_key_serialization_version
        keys = [serialize_entity_key(k, entity_key_serialization_version=version) for k, _, _, _ in data]
        partial = [i for i, (_, values, _, _) in enumerate(data) if len(values) < len(names)]
        stored: dict[bytes, dict[str, ValueProto]] = {}
        if partial:  # merge a push of some features into what is stored
            ks = [keys[i] for i in partial]
            stored = {k: v for k, (_, v) in zip(ks, self._read(conn, tbl, ks)) if v is not None}
        rows = []
        for key, (_, values, ts, _) in zip(keys, data):
            base = stored.get(key, {})
            vals = [values.get(n) or base.get(n) or ValueProto() for n in names]
            rows.append((key, _us(ts), schema_id, RepeatedValue(val=vals).SerializeToString()))
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._register_schema(conn, tbl, schema_id, names)
            self._upsert(conn, tbl, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if progress:
            progress(len(data))

    @staticmethod
    def _fetch(conn: sqlite3.Connection, tbl: str, keys: list[bytes]) -> dict[bytes, tuple[int, int, bytes]]:
        """Stored ``(event_ts, schema_id, payload)`` by entity key, one query per 500 keys."""
        found: dict[bytes, tuple[int, int, bytes]] = {}
        for i in range(0, len(keys), 500):  # stay under SQLite's bound-parameter limit
            part = keys[i:i + 500]
            sql = f'SELECT entity_key, event_ts, schema_id, payload FROM "{tbl}" WHERE entity_key IN ({",".join("?" * len(part))})'
            for k, ts, sid, payload in conn.execute(sql, part):
                found[k] = (ts, sid, payload)
        return found

    def _read(self, conn: sqlite3.Connection, tbl: str,
              keys: list[bytes]) -> list[tuple[Optional[datetime], Optional[dict[str, ValueProto]]]]:
        found = self._fetch(conn, tbl, keys)
        out: list[tuple[Optional[datetime], Optional[dict[str, ValueProto]]]] = []
        for k in keys:
            hit = found.get(k)
            if hit is None:
                out.append((None, None))
                continue
            ts, sid, payload = hit
            vals = RepeatedValue.FromString(payload).val
            names = self._names_of(conn, tbl, sid)
            out.append((datetime.fromtimestamp(ts / 1_000_000, tz=timezone.utc), dict(zip(names, vals))))
        return out

    def online_read(self, config: RepoConfig, table: FeatureView, entity_keys: list[EntityKeyProto],
                    requested_features: Optional[list[str]] = None
                    ) -> list[tuple[Optional[datetime], Optional[dict[str, ValueProto]]]]:
        version = config.entity_key_serialization_version
        keys = [serialize_entity_key(k, entity_key_serialization_version=version) for k in entity_keys]
        try:
            return self._read(self._reader(config), self._table(config, table), keys)
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return [(None, None)] * len(keys)
            raise

    def _read_features_per_fv(self, config: RepoConfig, grouped_refs: list, join_key_values: dict,
                              entity_name_to_join_key_map: dict, online_features_response: Any,
                              full_feature_names: bool, include_feature_view_version_metadata: bool) -> None:
        """Feast's per-view read hook: one query per view, the response written from the stored bytes.

        Same response as the generic path (``OnlineStore._read_features_per_fv``), without a
        Python ``ValueProto``/``FeatureVector`` per feature (:mod:`features.feast_ext.response`).
        """
        if include_feature_view_version_metadata:
            return super()._read_features_per_fv(config, grouped_refs, join_key_values, entity_name_to_join_key_map,
                                                 online_features_response, full_feature_names,
                                                 include_feature_view_version_metadata)
        conn = self._reader(config)
        version = config.entity_key_serialization_version
        for table, requested in grouped_refs:
            entities, idxs, n = feast_utils._get_unique_entities(table, join_key_values, entity_name_to_join_key_map)
            keys = [serialize_entity_key(k, entity_key_serialization_version=version)
                    for k in feast_utils._get_entity_key_protos(entities)]
            tbl = self._table(config, table)
            try:
                stored = self._fetch(conn, tbl, keys)
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):
                    raise
                stored = {}
            rows: list = [None] * n
            for key, dest in zip(keys, idxs):
                hit = stored.get(key)
                if hit is not None:
                    row = (hit[0], hit[2], self._names_of(conn, tbl, hit[1]))
                    for i in dest:
                        rows[i] = row
            prefix = table.projection.name_to_use()
            online_features_response.metadata.feature_names.val.extend(
                [f"{prefix}__{f}" for f in requested] if full_feature_names else requested)
            results, present = feature_vectors(requested, rows)
            online_features_response.MergeFromString(results)
            if _metrics_on():
                from feast.metrics import track_feature_statuses

                track_feature_statuses(table.name, present, len(requested) * n - present)

    def _build_feature_types(self, grouped_refs: list) -> dict:
        """Feast's name -> ValueType map of the requested features, cached per (views, features) request."""
        cache = self.__dict__.setdefault("_types", {})
        key = tuple((id(table), tuple(features)) for table, features in grouped_refs)
        hit = cache.get(key)
        if hit is None:
            if len(cache) > 256:
                cache.clear()
            # keep the views alive with their ids: Feast's request cache hands out the same objects
            hit = cache[key] = (SqliteOnlineStore._build_feature_types(grouped_refs), [t for t, _ in grouped_refs])
        return dict(hit[0])

    def teardown(self, config: RepoConfig, tables: Sequence[FeatureView], entities: Sequence[Entity]) -> None:
        conn = self._get_conn(config)
        for table in tables:
            conn.execute(f'DROP TABLE IF EXISTS "{self._table(config, table)}"')
            conn.execute(f"DELETE FROM {_SCHEMA_TABLE} WHERE tbl = ?", (self._table(config, table),))
