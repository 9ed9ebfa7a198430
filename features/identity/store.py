"""The identity directory: public table formats, and where each piece lives.

Public (the contract other areas read; no raw phone/email anywhere; read them with
:func:`features.identity.tables.read_identity_table`, which applies incremental deltas)::

    record_map      source, record_id, one_id
    golden          one_id, birth_year, gender, city, reg_channel, occupation,
                    first_seen, last_seen, n_records, sources
    identifiers     id_type, id_hash (16 hex: HMAC-SHA256 prefix), one_id, n_records, last_seen
    aliases         alias_id, one_id, run_id (ids merged away; chains followed to the survivor)
    refused         id_type, id_hash, one_id, reason (links a limit refused, per holder)
    dropped         source, record_id, id_type, reason (identifiers dropped: blocked / invalid)
    changelog/<run_id>.parquet   run_id, change (new|merged|split), one_id, from_one_id, n_records
    summary.json    the last run's counts and timings

Base files, deltas and the manifest: :mod:`features.identity.tables`; the private state:
:mod:`features.identity.state`. This module turns frames keyed by id numbers into those tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from features.identity.hashing import hex64
from features.identity.stable import format_ids
from features.identity.state import StateError, has_state, state_dir  # noqa: F401  (re-exported)
from features.identity.tables import write_json, write_table  # noqa: F401  (re-exported)

TS = pa.timestamp("us", tz="UTC")


def _ts(values) -> pa.Array:
    return pa.array(np.asarray(values, "datetime64[us]")).cast(TS)


def _text(values) -> pa.Array:
    """Strings from a Series without per-value Python work for categoricals and all-null columns."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        cats = pa.array(np.asarray(s.cat.categories.astype(str), object), pa.string())
        return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), cats).cast(pa.string())
    if not s.notna().any():
        return pa.nulls(len(s), pa.string())
    return pa.array(s.astype("string"), pa.string())


def golden_table(g: pd.DataFrame) -> pa.Table:
    """Public golden records from a frame keyed by ``one_num``."""
    from features.identity.golden import ATTRS

    cols = {"one_id": format_ids(g["one_num"].to_numpy())}
    for a in ATTRS:
        cols[a] = pa.array(g[a].astype("Int64"), pa.int64()) if a == "birth_year" else _text(g[a])
    cols.update(first_seen=_ts(g["first_seen"]), last_seen=_ts(g["last_seen"]),
                n_records=pa.array(g["n_records"].to_numpy(np.int64)), sources=_text(g["sources"]))
    return pa.table(cols)


def identifiers_table(ids: pd.DataFrame) -> pa.Table:
    return pa.table({"id_type": _text(ids["id_type"]), "id_hash": hex64(ids["key"].to_numpy()),
                     "one_id": format_ids(ids["one_num"].to_numpy()),
                     "n_records": pa.array(ids["n_records"].to_numpy(np.int64)), "last_seen": _ts(ids["last_seen"])})


def refused_table(ref: pd.DataFrame) -> pa.Table:
    return pa.table({"id_type": _text(ref["id_type"]), "id_hash": hex64(ref["key"].to_numpy()),
                     "one_id": format_ids(ref["one_num"].to_numpy()), "reason": _text(ref["reason"])})


def aliases_table(al: pd.DataFrame) -> pa.Table:
    return pa.table({"alias_id": format_ids(al["alias_num"].to_numpy()), "one_id": format_ids(al["one_num"].to_numpy()),
                     "run_id": _text(al["run_id"])})


def aliases_frame(table: pa.Table) -> pd.DataFrame:
    """alias_num, one_num, run_id of a public aliases table."""
    from features.identity.stable import parse_ids

    return pd.DataFrame({"alias_num": parse_ids(table.column("alias_id")), "one_num": parse_ids(table.column("one_id")),
                         "run_id": table.column("run_id").to_pandas()})


def changelog_table(changes: pd.DataFrame, run_id: str) -> pa.Table:
    return pa.table({"run_id": pa.array([run_id] * len(changes), pa.string()),
                     "change": _text(changes["change"].astype("category")),
                     "one_id": format_ids(changes["one_num"].to_numpy()),
                     "from_one_id": _optional_ids(changes["from_num"].to_numpy()),
                     "n_records": pa.array(changes["n_records"].to_numpy(), pa.int64())})


def _optional_ids(nums: np.ndarray) -> pa.Array:
    """one_id strings, null where the number is negative (no such id)."""
    import pyarrow.compute as pc

    return pc.if_else(pa.array(nums >= 0), format_ids(np.maximum(nums, 0)), pa.scalar(None, pa.string()))
