"""The identity directory: private state between runs and the public outputs.

Public (the contract other areas read; no raw phone/email anywhere)::

    record_map.parquet    source, record_id, one_id
    golden.parquet        one_id, birth_year, gender, city, reg_channel, occupation,
                          first_seen, last_seen, n_records, sources
    identifiers.parquet   id_type, id_hash (16 hex: HMAC-SHA256 prefix), one_id, n_records, last_seen
    aliases.parquet       alias_id, one_id, run_id (ids merged away; chains followed to the survivor)
    refused.parquet       id_type, id_hash, one_id, reason (links a limit refused, per holder)
    dropped.parquet       source, record_id, id_type, reason (identifiers dropped: blocked / invalid)
    changelog/<run_id>.parquet   run_id, change (new|merged|split), one_id, from_one_id, n_records
    summary.json          the last run's counts and timings

Private (``state/``): ``records.parquet`` (rkey, one_num, observed_at, k_<type> per identifier
type, sorted by rkey, row order = record_map's), ``profiles.parquet`` (golden inputs) and
``meta.json`` (next id, key fingerprint, identifier types). The other tables are read back
from the public files (one_ids and id_hashes parse back to numbers without per-value work).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.identity.hashing import hex64
from features.identity.stable import format_ids
from features.io import atomic_write

PARQUET = {"compression": "lz4", "write_statistics": False}  # fast: these files are rewritten every run
LOW_CARDINALITY = {"source", "id_type", "reason", "change", "run_id", "gender", "city", "reg_channel", "occupation",
                   "sources"}  # dictionary-encoded; unique strings (ids, hashes) are not


class StateError(RuntimeError):
    """The identity state cannot be used with this run (other key, missing, corrupt)."""


def write_table(table: pa.Table | pd.DataFrame, path: Path, compression: str = "lz4") -> Path:
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    dictionary = [c for c in table.column_names if c in LOW_CARDINALITY]
    opts = {**PARQUET, "compression": compression}
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp, use_dictionary=dictionary, **opts))


def write_json(obj: dict, path: Path) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, default=str)))


TS = pa.timestamp("us", tz="UTC")


def _ts(values) -> pa.Array:
    return pa.array(np.asarray(values, "datetime64[us]")).cast(TS)


def _text(values) -> pa.Array:
    return pa.array(pd.Series(values).astype("string"), pa.string())


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


@dataclass
class State:
    records: pd.DataFrame  # rkey (sorted), one_num, observed_at, k_<type>... (private)
    source: pa.Array  # per record, aligned with records
    record_id: pa.Array
    profiles: pd.DataFrame  # rkey, source, observed_at, attributes (private: golden inputs)
    golden: pa.Table  # public form (one_id strings)
    identifiers: pa.Table
    refused: pa.Table
    aliases: pa.Table
    meta: dict


def state_dir(identity_dir: Path) -> Path:
    return Path(identity_dir) / "state"


def has_state(identity_dir: Path) -> bool:
    return (state_dir(identity_dir) / "meta.json").exists()


def read_public(identity_dir: Path, name: str) -> pa.Table:
    return pq.read_table(Path(identity_dir) / f"{name}.parquet")


def load_state(identity_dir: Path, full: bool = True) -> State:
    """The state of the last run; ``full=False`` reads only what a full run needs (ids per record, aliases)."""
    sd = state_dir(identity_dir)
    try:
        meta = json.loads((sd / "meta.json").read_text())
        if not full:
            rec = pq.read_table(sd / "records.parquet", columns=["rkey", "one_num"]).to_pandas()
            empty = pa.table({})
            return State(rec, pa.array([], pa.string()), pa.array([], pa.string()), pd.DataFrame(), empty, empty,
                         empty, read_public(identity_dir, "aliases"), meta)
        rec = pq.read_table(sd / "records.parquet")
        rmap = read_public(identity_dir, "record_map")
        return State(
            records=rec.to_pandas(), source=rmap.column("source").combine_chunks(),
            record_id=rmap.column("record_id").combine_chunks(), profiles=pd.read_parquet(sd / "profiles.parquet"),
            golden=read_public(identity_dir, "golden"), identifiers=read_public(identity_dir, "identifiers"),
            refused=read_public(identity_dir, "refused"), aliases=read_public(identity_dir, "aliases"), meta=meta)
    except (OSError, ValueError, KeyError) as exc:
        raise StateError(f"{sd}: identity state unreadable ({type(exc).__name__}: {exc}); "
                         "run `portrait identity resolve` without --incremental to rebuild it") from exc


def save(identity_dir: Path, st: State, changes: pd.DataFrame, run_id: str, summary: dict,
         timings: dict | None = None, t_start: float | None = None) -> None:
    """Write the private state, then the public outputs (each file atomically).

    With ``timings``/``t_start`` the write time is added as ``timings["write"]`` before the summary is written.
    """
    d, sd = Path(identity_dir), state_dir(identity_dir)
    write_table(st.records, sd / "records.parquet", compression="none")
    write_table(st.profiles, sd / "profiles.parquet", compression="none")
    one_id = format_ids(st.records["one_num"].to_numpy())
    write_table(pa.table({"source": st.source, "record_id": st.record_id, "one_id": one_id}), d / "record_map.parquet")
    write_table(st.golden, d / "golden.parquet")
    write_table(st.identifiers, d / "identifiers.parquet")
    write_table(st.refused, d / "refused.parquet")
    write_table(st.aliases, d / "aliases.parquet")
    write_table(pa.table({"run_id": pa.array([run_id] * len(changes), pa.string()),
                          "change": pa.array(changes["change"].astype(str).tolist(), pa.string()),
                          "one_id": format_ids(changes["one_num"].to_numpy()),
                          "from_one_id": _optional_ids(changes["from_num"].to_numpy()),
                          "n_records": pa.array(changes["n_records"].to_numpy(), pa.int64())}),
                d / "changelog" / f"{run_id}.parquet")
    if timings is not None and t_start is not None:
        import time

        timings["write"] = time.perf_counter() - t_start
        summary["seconds"] = timings
    write_json(summary, d / "summary.json")
    write_json(st.meta, sd / "meta.json")  # last: a crash before this leaves the previous meta


def _optional_ids(nums: np.ndarray) -> pa.Array:
    """one_id strings, null where the number is negative (no such id)."""
    import pyarrow.compute as pc

    return pc.if_else(pa.array(nums >= 0), format_ids(np.maximum(nums, 0)), pa.scalar(None, pa.string()))
