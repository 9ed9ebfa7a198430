"""Incremental OneID: resolve only what new records can change.

1. Records whose ``(source, record_id)`` is unknown, or known with a newer ``observed_at``,
   form the batch; the rest of the input is ignored.
2. The persons *affected* are those holding an identifier key the batch holds, plus the
   previous owners of updated records. Values a limit already refused (a kiosk device) are
   left out: adding holders cannot make them link, so they neither pull their holders in nor
   link anything in the re-resolved subset (new holders are added to ``refused.parquet``). Their records and the batch are re-resolved with the
   same graph rules (:mod:`features.identity.graph`); every other person keeps its records,
   golden record and identifiers untouched.
3. Ids follow :mod:`features.identity.stable` (joining records get the person's id, merges
   keep the older id and alias the other, splits get new ids) and the changes are logged.

Work is proportional to the batch and its neighbourhood, plus one pass over the key
columns (``isin``) and the rewrite of the output files.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from features.identity.config import ResolveConfig
from features.identity.graph import resolve_graph
from features.identity.hashing import key_fingerprint
from features.identity.prepare import hash_records, read_profiles
from features.identity.resolve import (
    Step, _dedupe, _follow, _golden, _identifiers, _kcol, _prepare, _refused_holders, _summary, dropped_table,
)
from features.identity.stable import assign_ids, parse_ids
from features.identity.store import (
    State, StateError, aliases_frame, aliases_table, golden_table, identifiers_table, refused_table, save, write_table,
)


def _limit_refused(refused: pa.Table) -> dict[str, pd.Series]:
    """id_type -> Series(reason, index=key) of the values a limit refused in earlier runs."""
    from features.identity.hashing import keys_of_hex

    if not refused.num_rows:
        return {}
    df = pd.DataFrame({"id_type": refused.column("id_type").to_pandas(), "key": keys_of_hex(refused.column("id_hash")),
                       "reason": refused.column("reason").to_pandas()})
    df = df[df["reason"].str.startswith("limit:")].drop_duplicates(["id_type", "key"])
    return {str(t): g.set_index("key")["reason"] for t, g in df.groupby("id_type")}


def _unseen(table: pa.Table, rk: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Rows whose record key is not in the state (``rk`` sorted) or whose observed_at is newer."""
    from features.identity.hashing import hash64, record_keys
    from features.identity.prepare import _text, _timestamps

    keys = hash64(record_keys(_text(table, "source"), _text(table, "record_id"))[0])
    if not len(rk):
        return np.ones(len(keys), bool)
    pos = np.minimum(np.searchsorted(rk, keys), len(rk) - 1)
    return (rk[pos] != keys) | (_timestamps(table) > obs[pos].astype("datetime64[us]"))


def resolve_incremental(cfg: ResolveConfig, records: pa.Table | None = None, profiles: pd.DataFrame | None = None,
                        step: Step | None = None) -> dict:
    """Incremental run (module docstring); ``records``/``profiles`` may be the new batch or the full tables."""
    step = step or (lambda _msg: None)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    key, rules, prev, table = _prepare(cfg, records, step)
    if prev is None:
        raise StateError(f"{cfg.identity_dir}: no previous OneID run; run `portrait identity resolve` "
                         "without --incremental first")
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    types = rules.priority
    R = prev.records
    n = len(R)
    rk = R["rkey"].to_numpy()
    obs = R["observed_at"].to_numpy()
    n_in = table.num_rows
    step("selecting new and updated records")
    table = table.filter(pa.array(_unseen(table, rk, obs)))  # only these are normalized and hashed
    step("normalizing and hashing identifiers")
    hr = hash_records(table, rules, key)
    dropped = dropped_table(hr)
    hr = _dedupe(hr)
    pos = np.searchsorted(rk, hr.rkey)
    posc = np.minimum(pos, max(n - 1, 0))
    found = (rk[posc] == hr.rkey) if n else np.zeros(len(hr), bool)
    batch = ~found | (hr.observed_at > obs[posc].astype(hr.observed_at.dtype))
    hr = hr.take(np.flatnonzero(batch))
    pos, posc, found = pos[batch], posc[batch], found[batch]
    timings["read_hash"] = time.perf_counter() - t
    if not len(hr):  # nothing new: the state and the outputs stay as they are
        return {"run_id": run_id, "mode": "incremental", "input_records": n_in, "records": n,
                "people": int(prev.golden.num_rows), "changes": {}, "dropped_identifiers": hr.dropped, "links": {},
                "refused_values": 0, "seconds": timings, "batch_records": 0, "new_records": 0, "updated_records": 0,
                "affected_people": 0, "subset_records": 0}
    t = time.perf_counter()

    step("finding affected persons")
    one_num = R["one_num"].to_numpy()
    upd_rows = posc[found]
    affected = [one_num[upd_rows]]
    settled = _limit_refused(prev.refused)  # values a limit refused stay refused when holders are added
    skeys = {tp: r.index.to_numpy(np.int64) for tp, r in settled.items()}
    for tp in types:
        k = hr.keys[tp]
        k = k[(k != 0) & ~np.isin(k, skeys.get(tp, np.zeros(0, np.int64)))]
        if len(k):
            affected.append(one_num[R[_kcol(tp)].isin(k).to_numpy()])
    aff = np.unique(np.concatenate(affected)) if affected else np.zeros(0, np.int64)
    old_rows = np.flatnonzero(np.isin(one_num, aff) if len(aff) < 64 else pd.Series(one_num).isin(aff).to_numpy())
    keep_old = np.setdiff1d(old_rows, upd_rows, assume_unique=True)
    sub_keys = {tp: np.concatenate([R[_kcol(tp)].to_numpy()[keep_old], hr.keys[tp]]) for tp in types}
    still = {tp: np.isin(sub_keys[tp], skeys.get(tp, np.zeros(0, np.int64))) for tp in types}  # no links in the subset
    sub_keys = {tp: np.where(still[tp], 0, sub_keys[tp]) for tp in types}
    graph = resolve_graph(sub_keys, types, rules.limits)
    prev_num = np.concatenate([one_num[keep_old], np.where(found, one_num[posc], -1)])
    a = assign_ids(graph.label, prev_num, np.concatenate([rk[keep_old], hr.rkey]), prev.meta["next_id"])
    timings["graph"] = time.perf_counter() - t
    t = time.perf_counter()

    step("splicing into the identity state")
    new_num = one_num.copy()
    new_num[keep_old] = a.one_num[: len(keep_old)]
    batch_num = a.one_num[len(keep_old):]
    new_num[upd_rows] = batch_num[found]
    cols = {"rkey": rk, "one_num": new_num, "observed_at": obs}
    cols.update({_kcol(tp): R[_kcol(tp)].to_numpy() for tp in types})
    batch_cols = {"rkey": hr.rkey, "one_num": batch_num, "observed_at": hr.observed_at.astype(obs.dtype)}
    batch_cols.update({_kcol(tp): hr.keys[tp] for tp in types})
    fresh = ~found
    ins = pos[fresh]
    out = {}
    for c, arr in cols.items():
        arr = arr.copy() if c not in ("one_num",) else arr
        arr[upd_rows] = batch_cols[c][found]
        out[c] = np.insert(arr, ins, batch_cols[c][fresh])
    records_df = pd.DataFrame(out)
    perm = np.insert(np.arange(n), ins, n + np.arange(int(fresh.sum())))
    idx = pa.array(perm)
    source = pa.concat_arrays([prev.source, hr.source.filter(pa.array(fresh))]).take(idx)
    record_id = pa.concat_arrays([prev.record_id, hr.record_id.filter(pa.array(fresh))]).take(idx)

    step("golden records")
    if profiles is None:
        profiles = read_profiles(Path(cfg.raw_dir) / "profiles.parquet")
    if profiles is not None and len(profiles):
        profiles = profiles[pd.Series(profiles["rkey"]).isin(hr.rkey).to_numpy()]
        old_prof = prev.profiles[~prev.profiles["rkey"].isin(profiles["rkey"]).to_numpy()] if len(prev.profiles) else None
        prof_state = pd.concat([p for p in (old_prof, profiles) if p is not None and len(p)], ignore_index=True)
    else:
        prof_state = prev.profiles
    touched = np.union1d(aff, np.unique(a.one_num))
    sub_rows = np.flatnonzero(pd.Series(out["one_num"]).isin(np.unique(a.one_num)).to_numpy())
    sub = records_df.iloc[sub_rows].reset_index(drop=True)
    sub_prof = prof_state[prof_state["rkey"].isin(sub["rkey"]).to_numpy()] if len(prof_state) else None

    def splice(old: pa.Table, new: pa.Table) -> pa.Table:
        keep = ~pd.Series(parse_ids(old.column("one_id"))).isin(touched).to_numpy()
        return pa.concat_tables([old.filter(pa.array(keep)), new.cast(old.schema)]) if old.num_rows else new

    golden = splice(prev.golden, golden_table(_golden(sub, source.take(pa.array(sub_rows)), sub_prof, rules)))
    identifiers = splice(prev.identifiers, identifiers_table(_identifiers(sub, types)))
    kept_refusals = [pd.DataFrame({"id_type": tp, "key": settled[tp].index.to_numpy()[
        settled[tp].index.get_indexer(np.concatenate([R[_kcol(tp)].to_numpy()[keep_old], hr.keys[tp]])[still[tp]])],
        "one_num": a.one_num[still[tp]], "reason": "x"}) for tp in types if still[tp].any()]
    new_ref = _refused_holders(graph.refused, sub)
    if kept_refusals:
        held = pd.concat(kept_refusals, ignore_index=True)
        held["reason"] = [settled[t].loc[k] for t, k in zip(held["id_type"], held["key"])]
        new_ref = pd.concat([new_ref, held.drop_duplicates(["id_type", "key", "one_num"])], ignore_index=True)
    refused = splice(prev.refused, refused_table(new_ref))
    aliases = aliases_table(_follow(pd.concat([aliases_frame(prev.aliases), a.aliases.assign(run_id=run_id)],
                                              ignore_index=True)))
    timings["splice_golden"] = time.perf_counter() - t
    t = time.perf_counter()

    step("writing outputs")
    meta = {**prev.meta, "next_id": int(a.next_id), "key_fingerprint": key_fingerprint(key), "last_run": run_id}
    st = State(records_df, source, record_id, prof_state, golden, identifiers, refused, aliases, meta)
    extra = {"batch_records": int(len(hr)), "new_records": int(fresh.sum()), "updated_records": int(found.sum()),
             "affected_people": int(len(aff)), "subset_records": int(len(keep_old) + len(hr))}
    summary = _summary("incremental", run_id, n_in, hr, records_df, graph, a.changes, timings, extra,
                       people=golden.num_rows)
    old_dropped = Path(cfg.identity_dir) / "dropped.parquet"
    if old_dropped.exists() and dropped.num_rows:
        import pyarrow.parquet as pq

        dropped = pa.concat_tables([pq.read_table(old_dropped), dropped])
    if dropped.num_rows or not old_dropped.exists():
        write_table(dropped, old_dropped)
    save(cfg.identity_dir, st, a.changes, run_id, summary, timings, t)
    return summary
