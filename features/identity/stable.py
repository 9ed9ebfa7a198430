"""Stable one_ids across runs: keep ids, let the older id survive a merge, log every change.

A one_id is ``OID`` + 10 digits; the number grows with every person ever created, so a
smaller number is an older person. Given this run's groups and the one_id each record
had before (if any):

- a group whose records had no id gets a new one (``new``); new numbers are handed out
  in the order of the group's smallest record key, so a run is deterministic;
- a group holding records of one old id keeps it (records joining get the person's id);
- a group holding records of several old ids keeps the oldest; the others become
  aliases of it (``merged``);
- an old id whose records now fall into several groups stays with the group holding most
  of them (ties: the smallest group label); the other groups get new ids (``split``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa

PREFIX = "OID"
DIGITS = 10


@lru_cache(maxsize=1)
def _quads() -> np.ndarray:
    """ASCII digits of 0000..9999, one row each."""
    n = np.arange(10**4)
    return np.stack([48 + n // 1000, 48 + n // 100 % 10, 48 + n // 10 % 10, 48 + n % 10], axis=1).astype(np.uint8)


def format_ids(nums: np.ndarray) -> pa.Array:
    """one_id strings (``OID0000000042``) of id numbers, vectorized (fixed width: no per-value work)."""
    nums = np.asarray(nums, np.int64)
    if len(nums) and (nums.min() < 0 or nums.max() >= 10**DIGITS):
        raise ValueError("format_ids: id numbers must be in [0, 10**10)")
    width = len(PREFIX) + DIGITS
    if len(nums) >= 1_000_000:  # compiled, both cores (numpy is quick enough below)
        try:
            from features.identity._fasthash import format_kernel
        except ImportError:
            format_kernel = None
        if format_kernel is not None:
            flat = np.empty(len(nums) * width, np.uint8)
            format_kernel(nums, np.frombuffer(PREFIX.encode(), np.uint8), width, flat)
            offsets = np.arange(0, (len(nums) + 1) * width, width, dtype=np.int32)
            return pa.StringArray.from_buffers(len(nums), pa.py_buffer(offsets), pa.py_buffer(flat))
    out = np.empty((len(nums), width), np.uint8)
    out[:, : len(PREFIX)] = np.frombuffer(PREFIX.encode(), np.uint8)
    quad = _quads()  # 4 digits per lookup: three gathers instead of ten divisions
    out[:, len(PREFIX):len(PREFIX) + 2] = quad[nums // 10**8][:, 2:]
    out[:, len(PREFIX) + 2:len(PREFIX) + 6] = quad[(nums // 10**4) % 10**4]
    out[:, len(PREFIX) + 6:] = quad[nums % 10**4]
    offsets = np.arange(0, (len(nums) + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(len(nums), pa.py_buffer(offsets), pa.py_buffer(out.reshape(-1)))


def parse_ids(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Id numbers of one_id strings written by :func:`format_ids` (vectorized; ValueError otherwise)."""
    from features.identity.hashing import string_buffers

    width = len(PREFIX) + DIGITS
    if len(ids) == 0:
        return np.zeros(0, np.int64)
    offsets, data = string_buffers(ids)
    if not (np.diff(offsets) == width).all():
        raise ValueError("parse_ids: not all values are one_ids")
    digits = data[offsets[0]:offsets[-1]].reshape(-1, width)[:, len(PREFIX):].astype(np.int64) - 48
    if (digits < 0).any() or (digits > 9).any():
        raise ValueError("parse_ids: not all values are one_ids")
    return digits @ (10 ** np.arange(DIGITS - 1, -1, -1, dtype=np.int64))


def parse_id(text: str) -> int | None:
    """The number of a one_id string, or None when ``text`` is not one."""
    text = text.strip()
    if len(text) == len(PREFIX) + DIGITS and text[:len(PREFIX)].upper() == PREFIX and text[len(PREFIX):].isdigit():
        return int(text[len(PREFIX):])
    return None


@dataclass
class Assignment:
    one_num: np.ndarray  # int64 id number per record
    changes: pd.DataFrame  # change (new|merged|split), one_num, from_num (-1 for new), n_records
    aliases: pd.DataFrame  # alias_num -> one_num (ids merged away in this run)
    next_id: int  # first number not handed out yet


def assign_ids(label: np.ndarray, prev: np.ndarray, order_key: np.ndarray, next_id: int) -> Assignment:
    """Give each group of ``label`` a one_id number (rules in the module docstring).

    ``prev``: the record's previous id number or -1; ``order_key``: a deterministic int64 per
    record (the record key hash) that orders new groups.
    """
    label = np.asarray(label, np.int64)
    prev = np.asarray(prev, np.int64)
    groups, g = np.unique(label, return_inverse=True)
    n_groups = len(groups)
    size = np.bincount(g, minlength=n_groups)
    seen = prev >= 0
    pairs = pd.DataFrame({"g": g[seen], "old": prev[seen]}).value_counts().rename("cnt").reset_index()
    survivor = np.full(n_groups, -1, np.int64)
    changes, aliases = [], []
    if len(pairs):
        pairs = pairs.sort_values(["old", "cnt", "g"], ascending=[True, False, True], kind="stable")
        home = pairs.drop_duplicates("old", keep="first")  # the group where each old id stays
        elig = pairs.merge(home[["old", "g"]].rename(columns={"g": "home"}), on="old")
        elig = elig[elig["g"] == elig["home"]]
        surv = elig.groupby("g")["old"].min()
        survivor[surv.index.to_numpy()] = surv.to_numpy()
        merged = elig[elig["old"] != survivor[elig["g"].to_numpy()]]
        if len(merged):
            m = pd.DataFrame({"change": "merged", "one_num": survivor[merged["g"].to_numpy()],
                              "from_num": merged["old"].to_numpy(), "n_records": size[merged["g"].to_numpy()]})
            changes.append(m)
            aliases.append(pd.DataFrame({"alias_num": m["from_num"], "one_num": m["one_num"]}))
    fresh = np.flatnonzero(survivor < 0)
    if len(fresh):
        first_key = np.full(n_groups, np.iinfo(np.int64).max)
        np.minimum.at(first_key, g, np.asarray(order_key, np.int64))
        fresh = fresh[np.argsort(first_key[fresh], kind="stable")]
        survivor[fresh] = next_id + np.arange(len(fresh))
        next_id += len(fresh)
        had_prev = np.zeros(n_groups, bool)
        had_prev[g[seen]] = True
        brand_new = fresh[~had_prev[fresh]]
        changes.append(pd.DataFrame({"change": "new", "one_num": survivor[brand_new], "from_num": -1,
                                     "n_records": size[brand_new]}))
    if len(pairs):  # records of an old id that stayed in another group: a split
        away = pairs[pairs["g"].to_numpy() != home.set_index("old").loc[pairs["old"], "g"].to_numpy()]
        if len(away):
            changes.append(pd.DataFrame({"change": "split", "one_num": survivor[away["g"].to_numpy()],
                                         "from_num": away["old"].to_numpy(), "n_records": away["cnt"].to_numpy()}))
    cols = {"change": pd.Series(dtype=str), "one_num": pd.Series(dtype=np.int64),
            "from_num": pd.Series(dtype=np.int64), "n_records": pd.Series(dtype=np.int64)}
    ch = pd.concat(changes, ignore_index=True) if changes else pd.DataFrame(cols)
    al = pd.concat(aliases, ignore_index=True) if aliases else pd.DataFrame(
        {"alias_num": pd.Series(dtype=np.int64), "one_num": pd.Series(dtype=np.int64)})
    return Assignment(survivor[g], ch.astype({"one_num": np.int64, "from_num": np.int64, "n_records": np.int64}),
                      al, next_id)
