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
type, row order = record_map's), ``profiles.parquet`` (golden inputs), ``golden.parquet`` and
``identifiers.parquet`` keyed by one_num, and ``meta.json`` (next id, key fingerprint).
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


def write_table(table: pa.Table | pd.DataFrame, path: Path) -> Path:
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    dictionary = [c for c in table.column_names if c in LOW_CARDINALITY]
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp, use_dictionary=dictionary, **PARQUET))


def write_json(obj: dict, path: Path) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, default=str)))


@dataclass
class State:
    records: pd.DataFrame  # rkey, one_num, observed_at, k_<type>...
    source: pa.Array  # per record, aligned with records
    record_id: pa.Array
    profiles: pd.DataFrame  # rkey, source, observed_at, attributes
    golden: pd.DataFrame  # one_num + golden columns
    identifiers: pd.DataFrame  # id_type, key, one_num, n_records, last_seen
    refused: pd.DataFrame  # id_type, key, one_num, reason
    aliases: pd.DataFrame  # alias_num, one_num, run_id
    meta: dict


def state_dir(identity_dir: Path) -> Path:
    return Path(identity_dir) / "state"


def has_state(identity_dir: Path) -> bool:
    return (state_dir(identity_dir) / "meta.json").exists()


def load_state(identity_dir: Path) -> State:
    sd = state_dir(identity_dir)
    try:
        meta = json.loads((sd / "meta.json").read_text())
        rec = pq.read_table(sd / "records.parquet")
        rmap = pq.read_table(Path(identity_dir) / "record_map.parquet", columns=["source", "record_id"])
        return State(
            records=rec.to_pandas(), source=rmap.column("source").combine_chunks(),
            record_id=rmap.column("record_id").combine_chunks(),
            profiles=pd.read_parquet(sd / "profiles.parquet"), golden=pd.read_parquet(sd / "golden.parquet"),
            identifiers=pd.read_parquet(sd / "identifiers.parquet"), refused=pd.read_parquet(sd / "refused.parquet"),
            aliases=pd.read_parquet(sd / "aliases.parquet"), meta=meta)
    except (OSError, ValueError, KeyError) as exc:
        raise StateError(f"{sd}: identity state unreadable ({type(exc).__name__}: {exc}); "
                         "run `portrait identity resolve` without --incremental to rebuild it") from exc


def save(identity_dir: Path, st: State, changes: pd.DataFrame, run_id: str, summary: dict,
         timings: dict | None = None, t_start: float | None = None) -> None:
    """Write the private state, then the public outputs (each file atomically).

    With ``timings``/``t_start`` the write time is added as ``timings["write"]`` before the summary is written.
    """
    d, sd = Path(identity_dir), state_dir(identity_dir)
    write_table(st.records, sd / "records.parquet")
    write_table(st.profiles, sd / "profiles.parquet")
    write_table(st.golden, sd / "golden.parquet")
    write_table(st.identifiers, sd / "identifiers.parquet")
    write_table(st.refused, sd / "refused.parquet")
    write_table(st.aliases, sd / "aliases.parquet")
    one_id = format_ids(st.records["one_num"].to_numpy())
    write_table(pa.table({"source": st.source, "record_id": st.record_id, "one_id": one_id}), d / "record_map.parquet")
    g = st.golden
    gold = pa.Table.from_pandas(g.drop(columns=["one_num"]), preserve_index=False)
    write_table(gold.add_column(0, "one_id", format_ids(g["one_num"].to_numpy())), d / "golden.parquet")
    ids = st.identifiers
    write_table(pa.table({"id_type": pa.array(ids["id_type"].astype(str)), "id_hash": hex64(ids["key"].to_numpy()),
                          "one_id": format_ids(ids["one_num"].to_numpy()),
                          "n_records": pa.array(ids["n_records"].to_numpy()),
                          "last_seen": pa.array(ids["last_seen"].to_numpy())}), d / "identifiers.parquet")
    ref = st.refused
    write_table(pa.table({"id_type": pa.array(ref["id_type"].astype(str), pa.string()),
                          "id_hash": hex64(ref["key"].to_numpy()), "one_id": format_ids(ref["one_num"].to_numpy()),
                          "reason": pa.array(ref["reason"].astype(str), pa.string())}), d / "refused.parquet")
    al = st.aliases
    write_table(pa.table({"alias_id": format_ids(al["alias_num"].to_numpy()), "one_id": format_ids(al["one_num"].to_numpy()),
                          "run_id": pa.array(al["run_id"].astype(str), pa.string())}), d / "aliases.parquet")
    write_table(pa.table({"run_id": pa.array([run_id] * len(changes), pa.string()),
                          "change": pa.array(changes["change"].astype(str), pa.string()),
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
