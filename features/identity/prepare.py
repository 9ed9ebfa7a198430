"""From raw identity records to hashed keys: read, normalize, hash, count what was dropped.

Raw phone numbers and emails live only inside :func:`hash_records`: each distinct
normalized value is hashed once (HMAC-SHA256, see :mod:`features.identity.hashing`)
and every record gets an int64 key per identifier type (0 = none). Nothing raw is
returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.identity.config import Rules
from features.identity.hashing import hash64, hmac128, record_keys
from features.identity.normalize import normalize_column
from features.identity.record_ids import as_identifiers, protect
from features.schema import IDENTIFIER_TYPES, SchemaError

PROFILE_ATTRS = ("birth_year", "gender", "city", "reg_channel", "occupation")


@dataclass
class HashedRecords:
    rkey: np.ndarray  # int64 record key: hash of source + record_id (not secret; an index)
    source: pa.Array
    record_id: pa.Array
    observed_at: np.ndarray  # datetime64[us] (UTC)
    keys: dict[str, np.ndarray]  # id_type -> int64 key per record (0 = none)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)  # id_type -> reason -> records
    dropped_rows: pd.DataFrame | None = None  # row index, id_type, reason (no raw values)
    codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None  # id_type -> (dense code per record, key per code)
    order: np.ndarray | None = None  # argsort of rkey (stable), when computed alongside the hashing
    hashed_ids: int = 0  # distinct record ids that were phones/emails, replaced by their hash (record_ids.py)

    def __len__(self) -> int:
        return len(self.rkey)

    def take(self, idx: np.ndarray) -> HashedRecords:
        ix = pa.array(idx)
        codes = {t: (c[idx], u) for t, (c, u) in self.codes.items()} if self.codes is not None else None
        return HashedRecords(self.rkey[idx], self.source.take(ix), self.record_id.take(ix), self.observed_at[idx],
                             {t: k[idx] for t, k in self.keys.items()}, self.dropped, None, codes,
                             hashed_ids=self.hashed_ids)  # lost, a dedupe made the feature build drop every order


def read_identity_records(path: Path) -> pa.Table:
    """Read ``identity_records.parquet``; a clear error naming the file and the missing column."""
    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{path}: no such file (run `portrait data generate` or `portrait data import` first)")
    return check_identity_table(pq.read_table(path), str(path))


def check_identity_table(table: pa.Table, origin: str = "<records>") -> pa.Table:
    """The table itself, or a :class:`SchemaError` naming ``origin`` and the missing column."""
    missing = [c for c in ("source", "record_id", "observed_at") if c not in table.column_names]
    if missing:
        raise SchemaError(f"{origin}: table 'identity_records' is missing column(s) {missing}")
    if not any(t in table.column_names for t in IDENTIFIER_TYPES):
        raise SchemaError(f"{origin}: no identifier column (expected some of {list(IDENTIFIER_TYPES)})")
    return table


def _text(table: pa.Table, name: str) -> pa.Array:
    col = table.column(name)
    col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    return pc.cast(col, pa.string()) if not pa.types.is_string(col.type) else col


def _timestamps(table: pa.Table, name: str = "observed_at") -> np.ndarray:
    col = table.column(name)
    if pa.types.is_timestamp(col.type) and col.null_count == 0:  # the canonical form: no pandas round trip
        col = col.cast(pa.timestamp("us", tz=col.type.tz)) if col.type.unit != "us" else col
        ints = col.combine_chunks().cast(pa.int64()) if col.num_chunks != 1 else col.chunk(0).cast(pa.int64())
        return ints.to_numpy().view("datetime64[us]")
    ts = pd.to_datetime(col.to_pandas(), utc=True)
    return ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[us]")


def hash_records(table: pa.Table, rules: Rules, key: bytes, keep_dropped: bool = True) -> HashedRecords:
    """Normalize and hash every identifier column of ``table`` (identity_records shape)."""
    source, record_id = _text(table, "source"), _text(table, "record_id")
    if source.null_count or record_id.null_count:
        raise SchemaError("identity_records: source and record_id must not be null")
    # a record id that is a phone/email also links as one where the record holds no such contact
    table = as_identifiers(table, record_id, rules)
    # a phone or email used as record id is personal data: hashed before the record key or anything else
    record_id, hashed_ids = protect(record_id, rules, key)
    rkey = record_keys(source, record_id)
    keys: dict[str, np.ndarray] = {}
    codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    dropped: dict[str, dict[str, int]] = {}
    rows = []
    present = [t for t in rules.priority if t in table.column_names]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:  # Arrow compute and numpy sorts release the GIL: both cores busy
        order = pool.submit(np.argsort, rkey, kind="stable")
        normalized = dict(zip(present, pool.map(lambda t: normalize_column(table.column(t), t, rules), present)))
        order = order.result()
        for t in present:
            col = normalized[t]
            dropped[t] = col.reasons
            if keep_dropped and col.reasons:
                bad = np.flatnonzero((col.codes < 0) & (col.indices >= 0))
                rows.append(pd.DataFrame({"row": bad, "id_type": t, "reason": col.entry_reason[col.indices[bad]]}))
        # one HMAC pass over every type's distinct normalized values ("<type>:<value>")
        joined = [pc.binary_join_element_wise(pa.scalar(t), normalized[t].values, ":") for t in present]
        all_keys = hash64(hmac128(pa.concat_arrays(joined), None, key)[0]) if joined else np.zeros(0, np.int64)
        bounds = np.cumsum([0] + [len(normalized[t].values) for t in present])

        def per_record(i: int) -> np.ndarray:  # key of each record's value (0 = none); numpy gathers release the GIL
            return np.append(all_keys[bounds[i]:bounds[i + 1]], 0)[normalized[present[i]].codes]

        for i, k in enumerate(pool.map(per_record, range(len(present)))):
            t = present[i]
            keys[t] = k
            codes[t] = (normalized[t].codes, all_keys[bounds[i]:bounds[i + 1]])
    for t in rules.priority:
        if t not in keys:
            keys[t] = np.zeros(len(rkey), np.int64)
            codes[t] = (np.full(len(rkey), -1, np.int64), np.zeros(0, np.int64))
            dropped[t] = {}
    dropped_rows = pd.concat(rows, ignore_index=True) if rows else None
    return HashedRecords(rkey, source, record_id, _timestamps(table), keys, dropped, dropped_rows, codes, order,
                         hashed_ids)


def source_record_keys(table: pa.Table, rules: Rules, key: bytes) -> np.ndarray:
    """Record keys of a table with source and record_id, record ids hashed as :func:`hash_records` does."""
    return record_keys(_text(table, "source"), protect(_text(table, "record_id"), rules, key)[0])


def read_profiles(path: Path, rules: Rules, key: bytes) -> pd.DataFrame | None:
    """Profiles (source, record_id, observed_at, attributes) or None when the file is absent."""
    path = Path(path)
    if not path.exists():
        return None
    table = pq.read_table(path)
    missing = [c for c in ("source", "record_id", "observed_at") if c not in table.column_names]
    if missing:
        raise SchemaError(f"{path}: table 'profiles' is missing column(s) {missing}")
    rkey = source_record_keys(table, rules, key)
    df = pd.DataFrame({"rkey": rkey, "source": _text(table, "source").to_pandas(),
                       "observed_at": _timestamps(table)})
    for a in PROFILE_ATTRS:
        if a in table.column_names:
            df[a] = table.column(a).to_pandas()
    return df
