"""Golden records: one merged profile per one_id.

Survivorship, per attribute (``birth_year``, ``gender``, ``city``, ``reg_channel``,
``occupation``): the value comes from the person's records of the highest-priority
source that has a non-null value for it (``source_priority`` in the rules: crm, app,
miniprogram, pos, web; unlisted sources rank last); among those records, the most
recently observed wins. ``first_seen``/``last_seen`` are the earliest/latest
``observed_at`` of the person's identity records, ``n_records`` their count and
``sources`` the sorted, comma-joined source names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ATTRS = ("birth_year", "gender", "city", "reg_channel", "occupation")
GOLDEN_COLUMNS = ("one_id", *ATTRS, "first_seen", "last_seen", "n_records", "sources")


def source_rank(sources: pd.Series, priority: tuple[str, ...]) -> np.ndarray:
    """Rank of each source name in ``priority`` (0 = highest); unlisted ones after all listed."""
    cat = pd.Categorical(sources)
    table = np.array([priority.index(c) if c in priority else len(priority) for c in cat.categories] + [len(priority) + 1])
    return table[cat.codes]


def golden_records(records: pd.DataFrame, profiles: pd.DataFrame, priority: tuple[str, ...]) -> pd.DataFrame:
    """Merge per person. ``records``: one_num, source, observed_at (identity records);
    ``profiles``: one_num, source, observed_at and the :data:`ATTRS` (missing ones are null).
    Returns one row per one_num (column ``one_num``; the caller formats ``one_id``)."""
    ids = records["one_num"].to_numpy(np.int64)
    obs = records["observed_at"].to_numpy().astype("datetime64[us]").view(np.int64)
    size = int(ids.max()) + 1 if len(ids) else 0
    if len(ids) < size // 4:  # a few persons with large id numbers (incremental runs): group by dense codes
        id_of, num = np.unique(ids, return_inverse=True)
        num = num.reshape(-1)
        size = len(id_of)
    else:
        id_of, num = None, ids
    count = np.bincount(num, minlength=size)
    first = np.full(size, np.iinfo(np.int64).max)
    last = np.full(size, np.iinfo(np.int64).min)
    np.minimum.at(first, num, obs)  # numpy group-bys over dense id numbers: no sort, no hashing
    np.maximum.at(last, num, obs)
    people = np.flatnonzero(count)
    out = pd.DataFrame({"first_seen": first[people].view("datetime64[us]"), "last_seen": last[people].view("datetime64[us]"),
                        "n_records": count[people].astype(np.int64)},
                       index=pd.Index(people if id_of is None else id_of[people], name="one_num"))
    src = records["source"]
    if isinstance(src.dtype, pd.CategoricalDtype):
        codes, names = src.cat.codes.to_numpy(), src.cat.categories.astype(str)
        names, remap = np.unique(np.asarray(names, object), return_inverse=True)
        codes = remap[codes]
    else:
        codes, names = pd.factorize(src.astype(str), sort=True)
    if len(names) <= 62:
        mask = np.zeros(size, np.int64)
        np.bitwise_or.at(mask, num, np.left_shift(1, codes).astype(np.int64))
        uniq, inv = np.unique(mask[people], return_inverse=True)
        text = [",".join(names[i] for i in range(len(names)) if m >> i & 1) for m in uniq.tolist()]
        out["sources"] = pd.Categorical.from_codes(inv.reshape(-1), pd.Index(text, dtype=object)) if len(text) \
            else pd.Series([], dtype=object)
    else:  # many sources: slower but general
        out["sources"] = records.groupby("one_num")["source"].agg(lambda s: ",".join(sorted(set(map(str, s)))))
    if len(profiles):
        prof = profiles.assign(_rank=source_rank(profiles["source"].astype(str), priority))
        prof = prof.sort_values(["one_num", "_rank", "observed_at"], ascending=[True, True, False], kind="stable")
        attrs = [a for a in ATTRS if a in prof.columns]
        merged = prof.groupby("one_num", sort=True)[attrs].first()
        out = out.join(merged, how="left")
    for a in ATTRS:
        if a not in out.columns:
            out[a] = pd.Series(pd.NA, index=out.index, dtype="string" if a != "birth_year" else "Int64")
    if "birth_year" in out.columns:
        out["birth_year"] = out["birth_year"].astype("Int64")
    out = out.reset_index().rename(columns={"index": "one_num"})
    return out[["one_num", *ATTRS, "first_seen", "last_seen", "n_records", "sources"]]
