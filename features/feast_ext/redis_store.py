"""Feast's Redis online store with a bulk, pipelined write path for materialization.

The layout is Feast's own (one hash per entity key + project; a field per feature named
by the murmur3 hash of ``view:feature``; ``_ts:view`` holds the event time), so reads are
the stock ``RedisOnlineStore`` code and any Feast client can read what this writes.
Only :meth:`write_arrow` (called by :class:`features.feast_ext.engine.PortraitComputeEngine`)
is new: values are encoded column by column (:mod:`features.feast_ext.encode`), the
newer-wins check is one pipelined ``HMGET`` round and a vectorized comparison, and the
``HSET`` commands go out in pipelines of ``write_chunk_rows`` entities.

Configure with ``online_store: {type: features.feast_ext.redis_store.PortraitRedisOnlineStore,
connection_string: "host:port"}``.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from feast import FeatureView
from feast.infra.online_stores.helpers import _mmh3
from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig, _versioned_fv_name
from feast.repo_config import RepoConfig
from google.protobuf.timestamp_pb2 import Timestamp

from features.feast_ext.encode import entity_key_bytes, value_bytes


class PortraitRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    """Feast's Redis options plus the number of entities per pipeline."""

    type: Literal["features.feast_ext.redis_store.PortraitRedisOnlineStore"] = (  # type: ignore[assignment]
        "features.feast_ext.redis_store.PortraitRedisOnlineStore"
    )
    write_chunk_rows: int = 20_000  # entities per pipeline (bounds client memory and reply size)


def _timestamp_bytes(us: np.ndarray) -> list[bytes]:
    """Serialized ``google.protobuf.Timestamp`` per row of UTC microseconds (one proto per distinct value)."""
    uniq, inverse = np.unique(us, return_inverse=True)
    encoded = []
    for u in uniq.tolist():
        ts = Timestamp(seconds=u // 1_000_000, nanos=(u % 1_000_000) * 1000)
        encoded.append(ts.SerializeToString())
    table = np.array(encoded, dtype=object)
    return table[inverse].tolist()


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
        project = config.project.encode()
        written = 0
        for start in range(0, data.num_rows, config.online_store.write_chunk_rows):
            chunk = data.slice(start, config.online_store.write_chunk_rows)
            keys = pc.binary_join_element_wise(entity_key_bytes(join_key, chunk.column(join_key)),
                                               pa.scalar(project, pa.binary()), b"").to_pylist()
            us = pc.cast(chunk.column(ts_field), pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
            with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hget(key, ts_key)
                stored = np.array([_stored_us(r) for r in pipe.execute()], dtype=np.int64)
            keep = np.flatnonzero(us > stored)  # newer wins, as in Feast's own write path
            if len(keep) == 0:
                continue
            cols = np.empty((len(keep), 3 + 2 * len(names)), dtype=object)  # key, _ts field, ts, f1, v1, ...
            cols[:, 0] = np.array(keys, dtype=object)[keep]
            cols[:, 1] = ts_key
            cols[:, 2] = np.array(_timestamp_bytes(us[keep]), dtype=object)
            idx = pa.array(keep)
            for j, (name, vtype) in enumerate(zip(names, types)):
                cols[:, 3 + 2 * j] = fields[j]
                cols[:, 4 + 2 * j] = np.array(value_bytes(chunk.column(name).take(idx), vtype).to_pylist(), dtype=object)
            with client.pipeline(transaction=False) as pipe:
                for row in cols.tolist():
                    pipe.execute_command("HSET", *row)
                    if config.online_store.key_ttl_seconds:
                        pipe.expire(row[0], config.online_store.key_ttl_seconds)
                pipe.execute()
            written += len(keep)
            if progress:
                progress(chunk.num_rows)
        return written
