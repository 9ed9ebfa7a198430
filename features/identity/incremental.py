"""Incremental OneID: resolve only what new records can change, write only what changed.

1. Records whose ``(source, record_id)`` is unknown, or known with a newer ``observed_at``,
   form the batch; the rest of the input is ignored.
2. The persons *affected* are those holding an identifier key the batch holds (found by a
   scan of the memory-mapped key columns of the state, :mod:`features.identity.state`), plus
   the previous owners of updated records. Values a limit already refused (a kiosk device)
   are left out: adding holders cannot make them link, so they neither pull their holders in
   nor link anything in the re-resolved subset (new holders are added to ``refused``). Their
   records and the batch are re-resolved with the same graph rules
   (:mod:`features.identity.graph`); every other person is untouched.
3. Ids follow :mod:`features.identity.stable` (joining records get the person's id, merges
   keep the older id and alias the other, splits get new ids) and the changes are logged.
4. Outputs: one delta part per public table (:mod:`features.identity.tables`: the records
   whose one_id changed or that are new; golden, identifiers and refused rows of the touched
   persons), a new state segment with the batch, and a new one_num column. After
   :data:`~features.identity.tables.MAX_DELTAS` deltas the run compacts the base instead.

Work is proportional to the batch and its neighbourhood, plus one scan of the key columns
and one copy of the one_num column (8 bytes per record).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.identity.config import ResolveConfig, load_rules
from features.identity.graph import resolve_graph
from features.identity.hashing import require_key
from features.identity.prepare import _timestamps, hash_records, read_profiles, source_record_keys
from features.identity.record_ids import meta_entry
from features.identity.resolve import (
    Step, _check_meta, _dedupe, _follow, _golden, _identifiers, _kcol, _read_input, _refused_holders, _run_id, _summary,
    dropped_table,
)
from features.identity.stable import assign_ids, format_ids
from features.identity.state import StateError, commit, has_state, load_state, state_dir, write_segment
from features.identity.store import aliases_frame, aliases_table, changelog_table, golden_table, identifiers_table, refused_table
from features.identity.tables import MAX_DELTAS, read_identity_table, write_delta, write_json, write_table


def _limit_refused(refused: pa.Table) -> dict[str, pd.Series]:
    """id_type -> Series(reason, index=key) of the values a limit refused in earlier runs."""
    from features.identity.hashing import keys_of_hex

    if not refused.num_rows:
        return {}
    refused = refused.filter(pc.starts_with(refused.column("reason"), "limit:"))
    df = pd.DataFrame({"id_type": refused.column("id_type").to_pandas(), "key": keys_of_hex(refused.column("id_hash")),
                       "reason": refused.column("reason").to_pandas()}).drop_duplicates(["id_type", "key"])
    return {str(t): g.set_index("key")["reason"] for t, g in df.groupby("id_type")}


def _sub_frame(st, rows: np.ndarray, hr, one_num: np.ndarray, types: tuple[str, ...]) -> pd.DataFrame:
    """Records of the re-resolved persons: state ``rows`` then the batch, with their new id numbers."""
    src = pa.concat_arrays([st.strings(rows).column("source").combine_chunks().cast(pa.string()),
                            hr.source.cast(pa.string())])
    df = pd.DataFrame({"rkey": np.concatenate([st.values("rkey", rows), hr.rkey]), "one_num": one_num,
                       "observed_at": np.concatenate([st.values("observed_at", rows),
                                                      hr.observed_at.view(np.int64)]).view("datetime64[us]"),
                       "source": src.dictionary_encode().to_pandas()})
    for tp in types:
        df[_kcol(tp)] = np.concatenate([st.values(_kcol(tp), rows), hr.keys[tp]])
    return df


def _profiles(cfg: ResolveConfig, st, profiles: pd.DataFrame | None, batch_rkeys: np.ndarray, rules, key: bytes):
    """(profile state to keep or None when unchanged, all profiles) after this batch."""
    if profiles is None:
        profiles = read_profiles(Path(cfg.raw_dir) / "profiles.parquet", rules, key)
    old = st.profiles()
    if profiles is None or not len(profiles):
        return None, old
    profiles = profiles[pd.Series(profiles["rkey"]).isin(batch_rkeys).to_numpy()]
    if not len(profiles):
        return None, old
    old = old[~old["rkey"].isin(profiles["rkey"]).to_numpy()] if len(old) else None
    new = pd.concat([p for p in (old, profiles) if p is not None and len(p)], ignore_index=True)
    return new, new


def _preload() -> None:
    """Import the compiled kernels' modules (numba takes ~0.4 s to import) while the state is being read."""
    try:
        import features.identity._fasthash  # noqa: F401
        import features.identity._sha256_lanes  # noqa: F401
    except Exception:  # noqa: BLE001 - a warm-up: the main thread's own import reports any failure
        pass


def resolve_incremental(cfg: ResolveConfig, records: pa.Table | None = None, profiles: pd.DataFrame | None = None,
                        step: Step | None = None) -> dict:
    """Incremental run (module docstring); ``records``/``profiles`` may be the new batch or the full tables."""
    step = step or (lambda _msg: None)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    key, rules = require_key(cfg.hmac_key, cfg.demo_key), load_rules(cfg.rules_path)
    if not has_state(cfg.identity_dir):
        raise StateError(f"{cfg.identity_dir}: no previous OneID run; run `portrait identity resolve` "
                         "without --incremental first")
    import threading

    # only once the run will go on (a process that fails fast does not exit mid-import of numba);
    # imports only: the kernels themselves run on the calling thread
    threading.Thread(target=_preload, daemon=True).start()
    st = load_state(cfg.identity_dir)
    _check_meta(cfg, st.meta, key, rules)
    if "record_ids" not in st.meta:  # its phone/email record ids are raw: new records would not meet them
        raise StateError(f"{cfg.identity_dir}: the identity state predates hashing phone and email record ids; "
                         "run one full `portrait identity resolve` (without --incremental) first: one_ids are kept")
    table = _read_input(cfg, records, step)
    run_id = _run_id()
    types = rules.priority
    n_in = table.num_rows
    step("selecting new and updated records")
    rk_in = source_record_keys(table, rules, key)
    row = st.lookup(rk_in)
    fresh_or_newer = (row < 0) | (_timestamps(table).view(np.int64) > st.values("observed_at", np.maximum(row, 0)))
    table, row = table.filter(pa.array(fresh_or_newer)), row[fresh_or_newer]
    step("normalizing and hashing identifiers")
    hr = hash_records(table, rules, key)
    dropped = dropped_table(hr)
    hr, _ = _dedupe(hr)
    if len(hr) != len(row):  # the same record twice in the batch: _dedupe kept the latest
        row = st.lookup(hr.rkey)
    found = row >= 0
    timings["read_hash"] = time.perf_counter() - t
    if not len(hr):  # nothing new: the state and the outputs stay as they are
        return {"run_id": run_id, "mode": "incremental", "input_records": n_in, "records": int((st.one_num >= 0).sum()),
                "people": int(st.meta.get("people", 0)), "changes": {}, "dropped_identifiers": hr.dropped, "links": {},
                "refused_values": 0, "seconds": timings, "batch_records": 0, "new_records": 0, "updated_records": 0,
                "affected_people": 0, "subset_records": 0}
    t = time.perf_counter()

    step("finding affected persons")
    one_num = st.one_num
    upd_rows = row[found]
    affected = [one_num[upd_rows]]
    settled = _limit_refused(read_identity_table(cfg.identity_dir, "refused"))  # refused values stay refused
    skeys = {tp: r.index.to_numpy(np.int64) for tp, r in settled.items()}
    for tp in types:
        k = hr.keys[tp]
        k = k[(k != 0) & ~np.isin(k, skeys.get(tp, np.zeros(0, np.int64)))]
        if len(k):
            affected.append(one_num[st.rows_with(_kcol(tp), k)])
    aff = np.unique(np.concatenate(affected))
    aff = aff[aff >= 0]
    is_aff = np.zeros(int(st.meta["next_id"]), bool)
    is_aff[aff] = True
    old_rows = np.flatnonzero(is_aff[np.maximum(one_num, 0)] & (one_num >= 0))
    keep_old = np.setdiff1d(old_rows, upd_rows, assume_unique=True)
    raw_keys = {tp: np.concatenate([st.values(_kcol(tp), keep_old), hr.keys[tp]]) for tp in types}
    still = {tp: np.isin(raw_keys[tp], skeys.get(tp, np.zeros(0, np.int64))) for tp in types}  # no links in the subset
    sub_keys = {tp: np.where(still[tp], 0, raw_keys[tp]) for tp in types}
    graph = resolve_graph(sub_keys, types, rules.limits)
    prev_num = np.concatenate([one_num[keep_old], np.where(found, one_num[np.maximum(row, 0)], -1)])
    a = assign_ids(graph.label, prev_num, np.concatenate([st.values("rkey", keep_old), hr.rkey]), st.meta["next_id"])
    timings["graph"] = time.perf_counter() - t
    t = time.perf_counter()

    step("golden records and deltas")
    new_num = one_num.copy()
    new_num[keep_old] = a.one_num[: len(keep_old)]
    new_num[upd_rows] = -1  # superseded by the batch rows appended below
    batch_num = a.one_num[len(keep_old):]
    new_num = np.concatenate([new_num, batch_num])
    changed = keep_old[new_num[keep_old] != one_num[keep_old]]
    moved = st.strings(changed)
    rm_delta = pa.table({"source": pa.concat_arrays([moved.column("source").combine_chunks().cast(pa.string()),
                                                     hr.source.cast(pa.string())]),
                         "record_id": pa.concat_arrays([moved.column("record_id").combine_chunks().cast(pa.string()),
                                                        hr.record_id.cast(pa.string())]),
                         "one_id": format_ids(np.concatenate([new_num[changed], batch_num]))})
    sub = _sub_frame(st, keep_old, hr, a.one_num, types)
    prof_state, all_prof = _profiles(cfg, st, profiles, hr.rkey, rules, key)
    sub_prof = all_prof[all_prof["rkey"].isin(sub["rkey"]).to_numpy()] if len(all_prof) else None
    golden = _golden(sub, sub_prof, rules)
    new_ref = _refused_holders(graph.refused, sub)
    held = []  # holders of values a limit refused before: listed with the earlier reason
    for tp in types:
        if still[tp].any():
            idx = settled[tp].index.get_indexer(raw_keys[tp][still[tp]])
            held.append(pd.DataFrame({"id_type": tp, "key": settled[tp].index.to_numpy()[idx],
                                      "one_num": a.one_num[still[tp]], "reason": settled[tp].to_numpy()[idx]}))
    if held:
        held = pd.concat(held, ignore_index=True).drop_duplicates(["id_type", "key", "one_num"])
        new_ref = pd.concat([new_ref, held], ignore_index=True)
    touched = np.union1d(aff, np.unique(a.one_num))
    delta = {"record_map": rm_delta, "golden": golden_table(golden), "identifiers": identifiers_table(_identifiers(sub, types)),
             "refused": refused_table(new_ref), "dropped": dropped}
    old_aliases = read_identity_table(cfg.identity_dir, "aliases")
    aliases = aliases_table(_follow(pd.concat([aliases_frame(old_aliases), a.aliases.assign(run_id=run_id)],
                                              ignore_index=True)))
    timings["golden_deltas"] = time.perf_counter() - t
    t = time.perf_counter()

    step("writing outputs")
    d = Path(cfg.identity_dir)
    people = int(st.meta.get("people", 0)) + int(len(np.unique(a.one_num))) - int(len(aff))
    delta["aliases"] = aliases
    man = write_delta(d, run_id, delta, touched)
    cols = {"rkey": hr.rkey, "observed_at": hr.observed_at.view(np.int64), **{_kcol(tp): hr.keys[tp] for tp in types}}
    seg = write_segment(state_dir(d), f"seg-{run_id}", cols, pa.table({"source": hr.source, "record_id": hr.record_id}))
    hashed = int((st.meta.get("record_ids") or {}).get("hashed", 0)) + hr.hashed_ids  # an upper bound: a count only gates the feature build
    meta = {**st.meta, "next_id": int(a.next_id), "last_run": run_id, "people": people,
            "segments": [*st.meta["segments"], seg], "record_ids": meta_entry(rules, hashed)}
    commit(d, meta, new_num, run_id, prof_state)
    write_table(changelog_table(a.changes, run_id), d / "changelog" / f"{run_id}.parquet")
    compacted = len(man["deltas"]) >= MAX_DELTAS
    if compacted:
        compact(d, run_id)
    timings["write"] = time.perf_counter() - t
    extra = {"batch_records": int(len(hr)), "new_records": int((~found).sum()), "updated_records": int(found.sum()),
             "affected_people": int(len(aff)), "subset_records": int(len(keep_old) + len(hr)),
             "delta_records": int(rm_delta.num_rows), "compacted": compacted}
    summary = _summary("incremental", run_id, n_in, hr, sub, graph, a.changes, timings, extra, people=people)
    summary["records"] = int((new_num >= 0).sum())
    write_json(summary, d / "summary.json")
    return summary


def compact(identity_dir: Path, run_id: str) -> None:
    """Rewrite the public base tables with every delta applied (readers switch with the manifest)."""
    from features.identity.tables import TABLES, write_base

    tables = {name: read_identity_table(identity_dir, name) for name in TABLES}
    write_base(identity_dir, tables, run_id)
