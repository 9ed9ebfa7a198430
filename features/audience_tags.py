"""The ``lookalike_audiences`` predicted tag: the lookalike audiences that found each customer.

For every customer, the sorted comma-separated names of the saved lookalike audiences
(``source == "lookalike"`` under ``<data>/audiences/``) whose member file lists them, e.g.
``"skincare_lal,vip_lookalike"``; null when none does. The members of a lookalike audience
are the customers the expansion *found*: seeds are never among them (``expand`` excludes
them), so a seed customer is not tagged with the audience grown from it. The tag reads
"was found as a lookalike in audience X", never "was a seed of X".

:func:`sync_lookalike_tags` recomputes the tag from the saved audiences and writes the
customers whose value changed through ``PortraitStore.push_predicted_tags`` (only the
``lookalike_audiences`` column: their churn/LTV/propensity scores stay as stored), all
under the predicted-tags write lock, so two syncs or a sync and a score batch never
interleave. Because it reconciles with what the audience folder holds, one call covers a
created, replaced or deleted lookalike audience (and repairs an earlier failed push)::

    from features.audience import AudienceStore
    from features.audience_tags import sync_lookalike_tags
    from features.store import open_store

    result = sync_lookalike_tags(AudienceStore(settings.audiences_dir), open_store(settings))
    result.changed, result.tagged      # customers rewritten, customers carrying the tag now
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features.audience import AudienceError, AudienceStore

TAG = "lookalike_audiences"


@dataclass(frozen=True)
class TagSync:
    audiences: tuple[str, ...]  # the lookalike audiences the tag now reflects
    tagged: int  # customers found by at least one of them
    changed: int  # customers whose tag was written (gained or lost a name)
    cleared: int  # of those, customers left with no lookalike audience (tag now null)

    def summary(self) -> str:
        """One line for a terminal or an HTTP answer."""
        return (f"{TAG}: {self.changed:,} customer(s) updated ({self.cleared:,} cleared); {self.tagged:,} tagged "
                f"by {len(self.audiences)} lookalike audience(s)")


def is_lookalike(audiences: AudienceStore, name: str) -> bool:
    """Whether ``name`` is a saved lookalike audience (False when there is no such audience)."""
    try:
        return audiences.get(name).source == "lookalike"
    except AudienceError:
        return False


def lookalike_memberships(audiences: AudienceStore) -> tuple[pd.Series, tuple[str, ...]]:
    """The tag value per customer (``one_id`` -> ``"a,b"``, only customers with one) and the audiences read.

    A lookalike audience whose member file is missing or unreadable is an error naming it:
    skipping it would silently take its name off every member.
    """
    names, parts = [], []
    for meta in audiences.list():
        if meta.source != "lookalike":
            continue
        try:
            ids = audiences.frame(meta.name)["one_id"]
        except (OSError, KeyError, ValueError) as exc:
            raise AudienceError(f"lookalike audience {meta.name!r}: its member file cannot be read "
                                f"({type(exc).__name__}: {exc}); delete the audience or expand it again") from None
        names.append(meta.name)
        parts.append(pd.DataFrame({"one_id": ids.dropna().astype(str).to_numpy(), "name": meta.name}))
    if not parts:
        return pd.Series(dtype="string", name=TAG), ()
    pairs = pd.concat(parts, ignore_index=True).drop_duplicates().sort_values(["one_id", "name"])
    value = pairs.groupby("one_id", sort=True)["name"].agg(",".join).astype("string").rename(TAG)
    return value, tuple(sorted(names))


def sync_lookalike_tags(audiences: AudienceStore, store: Any, now: Any = None) -> TagSync:
    """Make every customer's ``lookalike_audiences`` match the saved lookalike audiences; what changed.

    ``store`` is a :class:`features.store.PortraitStore` (applied). Only customers whose
    value differs are written, stamped ``now`` (default: the current time), keeping their
    other predicted tags; a customer no audience lists any more gets a null.
    """
    when = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    with store.predicted_lock():  # the audience folder and the stored tags are read as one state
        want, names = lookalike_memberships(audiences)
        stored = store.latest_predicted()[TAG].dropna()
        ids = want.index.union(stored.index)
        new = want.reindex(ids)
        old = stored.astype("string").reindex(ids)
        differs = (new.fillna("") != old.fillna("")).to_numpy()
        rows = pd.DataFrame({"one_id": ids[differs].astype(str), TAG: new[differs].to_numpy(),
                             "event_timestamp": when})
        if len(rows):
            store.push_predicted_tags(rows)
    return TagSync(audiences=names, tagged=len(want), changed=int(differs.sum()),
                   cleared=int(rows[TAG].isna().sum()))


def feature_store_ready(data_dir: Path | str) -> bool:
    """Whether the data folder has an applied Feast repository (``portrait features apply``) to write tags to."""
    return (Path(data_dir) / "feast" / "registry.db").exists()


__all__ = ["TAG", "TagSync", "feature_store_ready", "is_lookalike", "lookalike_memberships", "sync_lookalike_tags"]
