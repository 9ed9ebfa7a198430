"""The private OneID state between runs (``<data>/identity/state/``), append-only.

An incremental run must not read or rewrite 10M records, so the state is kept as
uncompressed numpy columns that are memory-mapped, in **segments** (one per run that
added records; a full run writes a single one)::

    meta.json            format, next id, key fingerprint, identifier types, record-key version,
                         segments [{name, rows}], the current one_num file  (written last: the commit)
    seg-<run>/           rkey.npy, observed_at.npy (int64 us), k_<type>.npy per identifier type,
                         strings.arrow (source, record_id), idx_rkey.npy + idx_pos.npy (rkey sorted)
    one_num-<run>.npy    the person of every row of every segment; -1 = the row was superseded by a
                         newer observation of the same record in a later segment
    profiles.parquet     golden-record inputs (rkey, source, observed_at, attributes)

Nothing here holds a raw phone number or email: identifiers are int64 keyed hashes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.identity.tables import write_json

FORMAT = 2


class StateError(RuntimeError):
    """The identity state cannot be used with this run (other key, missing, corrupt)."""


def state_dir(identity_dir: Path) -> Path:
    return Path(identity_dir) / "state"


def has_state(identity_dir: Path) -> bool:
    return (state_dir(identity_dir) / "meta.json").exists()


def _save(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(arr), allow_pickle=False)


@dataclass
class Segment:
    path: Path
    start: int  # first global row
    rows: int
    _cache: dict = field(default_factory=dict)

    def col(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = np.load(self.path / f"{name}.npy", mmap_mode="r")
        return self._cache[name]

    def strings(self) -> pa.Table:
        if "strings" not in self._cache:
            self._cache["strings"] = pa.ipc.open_file(pa.memory_map(str(self.path / "strings.arrow"))).read_all()
        return self._cache["strings"]


@dataclass
class State:
    dir: Path
    meta: dict
    segments: list[Segment]
    one_num: np.ndarray  # per global row (-1 = superseded row)

    @property
    def n(self) -> int:
        return len(self.one_num)

    def column(self, name: str) -> np.ndarray:
        """One column over all segments (a memory map when there is one segment)."""
        parts = [s.col(name) for s in self.segments]
        return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def lookup(self, rkeys: np.ndarray) -> np.ndarray:
        """Global row of each record key among live rows (newest segment first), -1 when unknown."""
        out = np.full(len(rkeys), -1, np.int64)
        for s in reversed(self.segments):
            idx = s.col("idx_rkey")
            if not len(idx):
                continue
            pos = np.minimum(np.searchsorted(idx, rkeys), len(idx) - 1)
            row = s.start + np.asarray(s.col("idx_pos"))[pos]
            hit = (idx[pos] == rkeys) & (out < 0)
            hit &= self.one_num[np.where(hit, row, 0)] >= 0
            out[hit] = row[hit]
        return out

    def _where(self, rows: np.ndarray) -> np.ndarray:
        starts = np.array([s.start for s in self.segments], np.int64)
        return np.searchsorted(starts, rows, side="right") - 1

    def values(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Column ``name`` at global ``rows`` (gathered per segment, nothing concatenated)."""
        rows = np.asarray(rows, np.int64)
        if len(self.segments) == 1:
            return np.asarray(self.segments[0].col(name))[rows]
        seg = self._where(rows)
        out = np.zeros(len(rows), np.int64)
        for i in np.unique(seg):
            sel = np.flatnonzero(seg == i)
            out[sel] = np.asarray(self.segments[i].col(name))[rows[sel] - self.segments[i].start]
        return out

    def rows_with(self, name: str, keys: np.ndarray) -> np.ndarray:
        """Global rows whose column ``name`` holds one of ``keys`` (non-zero), scanned on both cores."""
        keys = np.unique(np.asarray(keys, np.int64))
        keys = keys[keys != 0]
        if not len(keys):
            return np.zeros(0, np.int64)
        try:
            from features.identity._fasthash import member_kernel
        except ImportError:
            member_kernel = None
        shift = 40  # a 2^24-bit (2 MB) bitmap of the keys' hashes
        h = (keys.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(shift)
        bits = np.zeros(1 << 21, np.uint8)
        np.bitwise_or.at(bits, (h >> np.uint64(3)).astype(np.int64), np.left_shift(1, (h & np.uint64(7)).astype(np.uint8)).astype(np.uint8))
        out = []
        for s in self.segments:
            col = np.asarray(s.col(name))
            if member_kernel is not None:
                hit = np.empty(len(col), np.bool_)
                member_kernel(col, keys, bits, shift, hit)
            else:
                hit = pd.Series(col).isin(keys).to_numpy()
            out.append(s.start + np.flatnonzero(hit))
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def strings(self, rows: np.ndarray) -> pa.Table:
        """source, record_id of global rows (in the given order)."""
        rows = np.asarray(rows, np.int64)
        starts = np.array([s.start for s in self.segments], np.int64)
        seg = self._where(rows)
        parts, order = [], []
        for i in np.unique(seg):
            sel = np.flatnonzero(seg == i)
            parts.append(self.segments[i].strings().take(pa.array(rows[sel] - starts[i])))
            order.append(sel)
        if not parts:
            return pa.table({"source": pa.array([], pa.string()), "record_id": pa.array([], pa.string())})
        t = pa.concat_tables(parts)
        return t.take(pa.array(np.argsort(np.concatenate(order), kind="stable")))

    def profiles(self) -> pd.DataFrame:
        p = self.dir / "profiles.parquet"
        return pd.read_parquet(p) if p.exists() else pd.DataFrame(columns=["rkey", "source", "observed_at"])


def load_state(identity_dir: Path) -> State:
    """The state of the last run (format 2); StateError when missing, older or unreadable."""
    sd = state_dir(identity_dir)
    try:
        meta = json.loads((sd / "meta.json").read_text())
        if meta.get("format") != FORMAT:
            raise StateError(f"{sd}: identity state written by an older version; run `portrait identity resolve` "
                             "(a full run, it keeps the one_ids) before an incremental run")
        segs, start = [], 0
        for s in meta["segments"]:
            segs.append(Segment(sd / s["name"], start, int(s["rows"])))
            start += int(s["rows"])
        one_num = np.load(sd / meta["one_num"])
        if len(one_num) != start:
            raise ValueError(f"{meta['one_num']} has {len(one_num)} rows, the segments {start}")
        return State(sd, meta, segs, one_num)
    except (OSError, ValueError, KeyError) as exc:
        raise StateError(f"{sd}: identity state unreadable ({type(exc).__name__}: {exc}); "
                         "run `portrait identity resolve` without --incremental to rebuild it") from exc


def live_ids(st: State) -> tuple[np.ndarray, np.ndarray]:
    """(record keys, one_num) of the live records of ``st``, sorted by record key."""
    live = st.one_num >= 0
    rk, num = np.asarray(st.column("rkey"))[live], st.one_num[live]
    order = np.argsort(rk, kind="stable")
    return rk[order], num[order]


def previous_ids(identity_dir: Path) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """(sorted record keys, one_num, meta) of the live records of the last run; also reads format-1 states."""
    sd = state_dir(identity_dir)
    if not has_state(identity_dir):
        return None
    meta = json.loads((sd / "meta.json").read_text())
    if meta.get("format") == FORMAT:
        st = load_state(identity_dir)
        return (*live_ids(st), st.meta)
    # format 1 (records.parquet in record_map order, HMAC record keys): re-key from record_map
    from features.identity.hashing import record_keys

    num = pq.read_table(sd / "records.parquet", columns=["one_num"]).column("one_num").to_numpy()
    rm = pq.read_table(Path(identity_dir) / "record_map.parquet", columns=["source", "record_id"])
    rk = record_keys(rm.column("source"), rm.column("record_id"))
    order = np.argsort(rk, kind="stable")
    return np.asarray(rk)[order], np.asarray(num)[order], meta


def write_segment(sd: Path, name: str, cols: dict[str, np.ndarray], strings: pa.Table,
                  order: np.ndarray | None = None) -> dict:
    """Write one segment's columns (a new folder: invisible until meta.json lists it); ``order`` sorts rkey."""
    p = sd / name
    p.mkdir(parents=True, exist_ok=True)
    rkey = np.asarray(cols["rkey"], np.int64)
    for c, arr in cols.items():
        _save(p / f"{c}.npy", arr)
    order = np.argsort(rkey, kind="stable") if order is None else order
    _save(p / "idx_rkey.npy", rkey[order])
    _save(p / "idx_pos.npy", order.astype(np.int64))
    with pa.OSFile(str(p / "strings.arrow"), "wb") as f, pa.ipc.new_file(f, strings.schema) as w:
        w.write_table(strings)
    return {"name": name, "rows": int(len(rkey))}


def commit(identity_dir: Path, meta: dict, one_num: np.ndarray, run_id: str,
           profiles: pd.DataFrame | None = None) -> None:
    """Write the one_num file (and profiles), then meta.json last; remove files no meta refers to."""
    sd = state_dir(identity_dir)
    sd.mkdir(parents=True, exist_ok=True)
    name = f"one_num-{run_id}.npy"
    _save(sd / name, np.asarray(one_num, np.int64))
    if profiles is not None:
        from features.identity.tables import write_table

        write_table(pa.Table.from_pandas(profiles, preserve_index=False), sd / "profiles.parquet", compression="none")
    prev = json.loads((sd / "meta.json").read_text()) if has_state(identity_dir) else {}
    meta = {**meta, "format": FORMAT, "one_num": name}
    write_json(meta, sd / "meta.json")
    keep = {name, prev.get("one_num"), "meta.json", "profiles.parquet"} | {s["name"] for s in meta["segments"]}
    keep |= {s["name"] for s in prev.get("segments", [])}  # a reader may still hold the previous meta
    for p in sd.iterdir():
        if p.name not in keep and not p.name.startswith("."):
            if p.is_dir():
                import shutil

                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
