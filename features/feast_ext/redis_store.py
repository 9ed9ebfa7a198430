"""Feast's Redis online store with a bulk, pipelined write path for materialization.

The layout is Feast's own (one hash per entity key + project; a field per feature named
by the murmur3 hash of ``view:feature``; ``_ts:view`` holds the event time), so reads are
the stock ``RedisOnlineStore`` code and any Feast client can read what this writes.
Only :meth:`write_arrow` (called by :class:`features.feast_ext.engine.PortraitComputeEngine`)
is new: values are encoded column by column (:mod:`features.feast_ext.encode`), the
newer-wins check is one pipelined ``HGET`` round and a vectorized comparison, and the
``HSET`` commands of ``write_chunk_rows`` entities are packed into RESP bytes with numpy
and sent at once (:mod:`features.feast_ext.resp`); redis-py's per-command packing and
pipeline queue cost more CPU than everything else. Cluster clients (which route each key)
use a redis-py pipeline instead. ``skip_dedup: true`` (Feast's option) skips the read.

Configure with ``online_store: {type: features.feast_ext.redis_store.PortraitRedisOnlineStore,
connection_string: "host:port"}``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Literal, Optional

import numpy as np
import pyarrow as pa
import redis
import pyarrow.compute as pc
from feast import FeatureView
from feast.infra.online_stores.helpers import _mmh3
from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig, _versioned_fv_name
from feast.repo_config import RepoConfig
from google.protobuf.timestamp_pb2 import Timestamp

from features.feast_ext.encode import entity_key_bytes, value_bytes
from features.feast_ext.resp import pack, send


class PortraitRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    """Feast's Redis options plus the number of entities per pipeline."""

    type: Literal["features.feast_ext.redis_store.PortraitRedisOnlineStore"] = (  # type: ignore[assignment]
        "features.feast_ext.redis_store.PortraitRedisOnlineStore"
    )
    write_chunk_rows: int = 20_000  # entities per pipeline (bounds client memory and reply size)


def _timestamp_bytes(us: np.ndarray) -> pa.Array:
    """Serialized ``google.protobuf.Timestamp`` per row of UTC microseconds (one proto per distinct value)."""
    uniq, inverse = np.unique(us, return_inverse=True)
    encoded = []
    for u in uniq.tolist():
        ts = Timestamp(seconds=u // 1_000_000, nanos=(u % 1_000_000) * 1000)
        encoded.append(ts.SerializeToString())
    return pa.array(encoded, pa.binary()).take(pa.array(inverse.ravel()))


def _stored_us(raw: Optional[bytes]) -> int:
    if not raw:
        return -1
    ts = Timestamp.FromString(raw)
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def _latest_per_key(data: pa.Table, join_key: str, ts_field: str) -> pa.Table:
    """``data`` with one row per key, the newest (materialization normally delivers that already)."""
    if pc.count_distinct(data.column(join_key)).as_py() == data.num_rows:
        return data
    import pandas as pd

    frame = pd.DataFrame({"k": data.column(join_key).to_numpy(zero_copy_only=False),
                          "t": pc.cast(data.column(ts_field), pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()})
    keep = frame.sort_values("t", kind="stable").drop_duplicates("k", keep="last").index.sort_values()
    return data.take(pa.array(keep.to_numpy()))


def _read_ts(client, keys: pa.Array, ts_key: bytes) -> list:
    """The stored event time (serialized Timestamp or None) of every key: one pipelined round."""
    if isinstance(client, redis.Redis):
        return send(client, [pack([b"HGET", keys, ts_key], len(keys))], len(keys))
    with client.pipeline(transaction=False) as pipe:
        for key in keys.to_pylist():
            pipe.hget(key, ts_key)
        return pipe.execute()


def _packed_writes(keys: pa.Array, ts_key: bytes, stamps: pa.Array, fields: list[bytes],
                   values: list[pa.Array], ttl: Optional[int]) -> list[pa.Buffer]:
    """RESP of an HSET (and an EXPIRE) per key, packed with numpy."""
    n = len(keys)
    args = [b"HSET", keys, ts_key, stamps]
    for field, col in zip(fields, values):
        args += [field, col]
    buffers = [pack(args, n)]
    if ttl:
        buffers.append(pack([b"EXPIRE", keys, str(int(ttl)).encode()], n))
    return buffers


def _write_pipelined(client, keys: pa.Array, ts_key: bytes, stamps: pa.Array, fields: list[bytes],
                     values: list[pa.Array], ttl: Optional[int]) -> None:
    """The same writes through a redis-py pipeline (cluster clients route each key themselves)."""
    cols = [keys.to_pylist(), stamps.to_pylist(), *(v.to_pylist() for v in values)]
    with client.pipeline(transaction=False) as pipe:
        for key, stamp, *vals in zip(*cols):
            row = [key, ts_key, stamp]
            for field, val in zip(fields, vals):
                row += [field, val]
            pipe.execute_command("HSET", *row)
            if ttl:
                pipe.expire(key, ttl)
        pipe.execute()


class PortraitRedisOnlineStore(RedisOnlineStore):
    """Feast's Redis online store with a bulk write for materialization (see module doc)."""

    def write_arrow(self, config: RepoConfig, table: FeatureView, data: pa.Table,
                    progress: Optional[Callable[[int], Any]] = None) -> int:
        """Write every row of ``data`` (join key, timestamp field, features) unless Redis holds a newer one.

        Returns the number of entities written.
        """
        if len(table.entity_columns) != 1:
            raise NotImplementedError(f"{table.name}: bulk writes support single-key entities only")
        join_key = table.entity_columns[0].name
        ts_field = table.batch_source.timestamp_field
        names = [f.name for f in table.features]
        missing = [c for c in [join_key, ts_field, *names] if c not in data.column_names]
        if missing:
            raise ValueError(f"{table.name}: rows to write lack column(s) {missing}")
        data = _latest_per_key(data, join_key, ts_field)
        client = self._get_client(config.online_store)
        fv_name = _versioned_fv_name(table, config)
        ts_key = f"_ts:{fv_name}".encode()
        fields = [_mmh3(f"{fv_name}:{n}") for n in names]
        types = [f.dtype.to_value_type() for f in table.features]
        project = pa.scalar(config.project.encode(), pa.binary())
        opts = config.online_store
        plain = isinstance(client, redis.Redis)

        def prepare(start: int) -> tuple[Callable[[], Any], int, int]:
            """Newer-wins read and encoding of one chunk: (its write, rows kept, rows seen)."""
            chunk = data.slice(start, opts.write_chunk_rows)
            keys = pc.binary_join_element_wise(entity_key_bytes(join_key, chunk.column(join_key)), project, b"")
            us = pc.cast(chunk.column(ts_field), pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
            if opts.skip_dedup:  # Feast's option: initial loads skip the newer-wins read
                keep = np.arange(chunk.num_rows)
            else:
                stored = np.array([_stored_us(r) for r in _read_ts(client, keys, ts_key)], dtype=np.int64)
                keep = np.flatnonzero(us > stored)  # newer wins, as in Feast's own write path
            if not len(keep):
                return (lambda: None), 0, chunk.num_rows
            idx = pa.array(keep)
            row = [keys.take(idx), ts_key, _timestamp_bytes(us[keep]), fields,
                   [value_bytes(chunk.column(n).take(idx), t) for n, t in zip(names, types)], opts.key_ttl_seconds]
            if not plain:
                return (lambda: _write_pipelined(client, *row)), len(keep), chunk.num_rows
            buffers = _packed_writes(*row)
            return (lambda: send(client, buffers, len(keep) * len(buffers))), len(keep), chunk.num_rows

        # chunk k+1 is read and packed on a second thread while chunk k is sent (sockets release the GIL)
        written = 0
        starts = list(range(0, data.num_rows, opts.write_chunk_rows))
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(prepare, starts[0]) if starts else None
            for k in range(len(starts)):
                write, kept, seen = pending.result()
                pending = pool.submit(prepare, starts[k + 1]) if k + 1 < len(starts) else None
                write()
                written += kept
                if progress:
                    progress(seen)
        return written
