"""Saved audiences: explicit id lists or rules over tags and features, static or dynamic.

Each audience lives in ``<data>/audiences/`` as two files written atomically:

* ``<name>.parquet``: the members, ``one_id`` (+ ``score``, ``percentile`` for lookalike
  results), best first; serving pages and exports read this file;
* ``<name>.json``: metadata (:class:`Audience`): kind, rule, creation time, size, lineage.

A **static** audience is frozen at creation (the list as of ``created_at``). A **dynamic**
audience keeps its rule; :meth:`AudienceStore.members` re-evaluates it on the latest
features and :meth:`AudienceStore.refresh` rewrites the member file. Rules use the safe
language of :mod:`features.audience_rules` (never ``eval``).

Example::

    store = AudienceStore(settings.audiences_dir)
    feats = latest_features(settings.features_dir)
    store.create_rule("young_f", 'age < 30 and gender == "F"', feats, dynamic=True)
    store.create_ids("vip_list", ["crm:C001", "+86 138 0000 0000"], resolve=index.resolve_many)
    store.members("young_f", feats)          # one_id array
    profile(store.members("young_f", feats), feats)   # TGI table (features.audience_profile)
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.audience_rules import RuleError, evaluate, validate
from features.io import atomic_write, write_parquet

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")  # same ids serving accepts
KEYS = ("one_id", "event_timestamp")


class AudienceError(ValueError):
    """Bad audience name, unknown audience, or unusable input (the message says which)."""


class AudienceExists(AudienceError):
    """An audience of that name exists and ``overwrite`` was not given. The message names this API's
    ``overwrite=True``; a caller with its own option for it (the CLI's ``--replace``) names that instead."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"audience {name!r} already exists; overwrite=True replaces it")


@dataclass(frozen=True)
class Audience:
    name: str  # file stem under <data>/audiences/
    kind: str  # "static" (frozen list) or "dynamic" (rule re-evaluated on the latest features)
    created_at: str  # ISO-8601 UTC time the audience was created (static: the list is as of then)
    size: int  # members when written
    rule: str | None = None  # the rule, when built from one
    source: str = "rule"  # "rule", "ids" or "lookalike"
    description: str = ""
    features_as_of: str | None = None  # cutoff of the features the rule was evaluated on
    unresolved: int = 0  # ids given that matched no customer (id lists)
    lineage: dict = field(default_factory=dict)  # seed audience, model version, parameters (lookalike)


def latest_features(features_dir: Path | str) -> pd.DataFrame:
    """Latest snapshot of ``customer_features.parquet`` (one row per one_id)."""
    path = Path(features_dir) / "customer_features.parquet"
    if not path.exists():
        raise AudienceError(f"{path}: no customer features; run `portrait features build` first")
    return latest_snapshot(pd.read_parquet(path))


def latest_snapshot(features: pd.DataFrame) -> pd.DataFrame:
    """Rows of the most recent ``event_timestamp`` (the frame itself when there is no such column)."""
    if "one_id" not in features.columns:
        raise AudienceError("features table has no one_id column")
    if "event_timestamp" not in features.columns:
        return features.reset_index(drop=True)
    ts = features["event_timestamp"]
    return features.loc[ts == ts.max()].reset_index(drop=True)


def empty_warning(meta: Audience) -> str | None:
    """What to say about an audience saved with no member (None when it has some): it is empty, and why as far
    as its metadata tells. Saving it is no error (a rule on a quiet week, a dynamic audience to fill later)."""
    if meta.size:
        return None
    if meta.source == "ids":
        why = f": none of the {meta.unresolved:,} id(s) given matches a customer"
    elif meta.rule is not None:
        why = (f": the rule {meta.rule!r} matches no customer of the features as of "
               f"{meta.features_as_of or 'the latest snapshot'}")
    else:
        why = ""
    later = " (a dynamic audience fills again when its rule matches: `portrait audience refresh`)" \
        if meta.kind == "dynamic" else ""
    return f"audience {meta.name!r} is empty, 0 members{why}; saved all the same{later}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _as_of(features: pd.DataFrame) -> str | None:
    if "event_timestamp" not in features.columns or features.empty:
        return None
    return pd.Timestamp(features["event_timestamp"].max()).isoformat()


class AudienceStore:
    """Create, read, refresh, export and delete audiences under one folder."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # -------------------------------------------------------------- paths
    def _path(self, name: str, suffix: str) -> Path:
        if not isinstance(name, str) or not NAME.match(name) or ".." in name:
            raise AudienceError(f"bad audience name {name!r}: use 1-128 letters, digits, '_', '-' or '.'")
        return self.root / f"{name}{suffix}"

    def exists(self, name: str) -> bool:
        return self._path(name, ".json").exists()

    def _write(self, meta: Audience, members: pd.DataFrame, overwrite: bool) -> Audience:
        if self.exists(meta.name) and not overwrite:
            raise AudienceExists(meta.name)
        write_parquet(members.reset_index(drop=True), self._path(meta.name, ".parquet"))
        text = json.dumps(asdict(meta), indent=2, default=str)
        atomic_write(self._path(meta.name, ".json"), lambda tmp: tmp.write_text(text))
        return meta

    # ------------------------------------------------------------- create
    def create_rule(self, name: str, rule: str, features: pd.DataFrame, dynamic: bool = False,
                    description: str = "", overwrite: bool = False) -> Audience:
        """Audience of the customers matching ``rule`` in the latest snapshot of ``features``."""
        snap = latest_snapshot(features)
        mask = evaluate(validate(rule, snap.columns), snap)
        members = pd.DataFrame({"one_id": snap.loc[mask, "one_id"].astype(str).to_numpy()})
        meta = Audience(name=name, kind="dynamic" if dynamic else "static", created_at=_now(), size=len(members),
                        rule=rule, source="rule", description=description, features_as_of=_as_of(snap))
        return self._write(meta, members, overwrite)

    def create_ids(self, name: str, ids: Iterable[str], resolve: Callable[[list[str]], list[str | None]] | None = None,
                   known: Iterable[str] | None = None, description: str = "", overwrite: bool = False,
                   unresolved_out: list | None = None) -> Audience:
        """Static audience from identifiers.

        ``resolve`` maps identifiers (raw phone/email/member id, ``source:record_id`` or
        one_id) to one_ids, e.g. ``IdentityIndex.resolve_many``; without it ids are taken as
        one_ids and, when ``known`` (the valid one_ids) is given, checked against it.
        Unmatched ids are counted in ``unresolved`` (and appended to ``unresolved_out`` when given,
        for the caller to show; never stored: they may be phone numbers); duplicates are dropped.
        A first line that matches nobody and looks like a column name (``one_id``, ``customer``) is a
        header, not an id.
        """
        raw = [str(x).strip() for x in ids if str(x).strip()]
        if not raw:
            raise AudienceError("the id list is empty")
        mapped = resolve(raw) if resolve is not None else raw
        known_set = None if known is None else set(map(str, known))
        ok = [m is not None and (known_set is None or str(m) in known_set) for m in mapped]
        confirmed = ok[0] and (resolve is not None or known_set is not None)  # unchecked ids prove nothing
        if not confirmed and looks_like_header(raw[0]):
            raw, mapped, ok = raw[1:], mapped[1:], ok[1:]
            if not raw:
                raise AudienceError("the id list has a header line and no ids")
        if unresolved_out is not None:
            unresolved_out.extend(r for r, good in zip(raw, ok) if not good)
        out = pd.Series([str(m) for m, good in zip(mapped, ok) if good], dtype=object).drop_duplicates()
        meta = Audience(name=name, kind="static", created_at=_now(), size=len(out), source="ids",
                        description=description, unresolved=len(raw) - sum(ok))
        return self._write(meta, pd.DataFrame({"one_id": out.astype(str).to_numpy()}), overwrite)

    def save_members(self, name: str, members: pd.DataFrame, source: str = "lookalike", lineage: dict | None = None,
                     description: str = "", overwrite: bool = False) -> Audience:
        """Static audience from a frame with ``one_id`` (+ ``score``, ``percentile``), best first."""
        if "one_id" not in members.columns:
            raise AudienceError("members need a one_id column")
        meta = Audience(name=name, kind="static", created_at=_now(), size=len(members), source=source,
                        description=description, lineage=dict(lineage or {}))
        return self._write(meta, members, overwrite)

    # --------------------------------------------------------------- read
    def get(self, name: str) -> Audience:
        path = self._path(name, ".json")
        if not path.exists():
            raise AudienceError(f"no audience {name!r} in {self.root}")
        return Audience(**json.loads(path.read_text()))

    def list(self) -> list[Audience]:
        if not self.root.exists():
            return []
        return [self.get(p.stem) for p in sorted(self.root.glob("*.json")) if NAME.match(p.stem)]

    def frame(self, name: str) -> pd.DataFrame:
        """The stored member file (one_id[, score, percentile])."""
        self.get(name)
        return pd.read_parquet(self._path(name, ".parquet"))

    def members(self, name: str, features: pd.DataFrame | None = None) -> np.ndarray:
        """one_ids of the audience; a dynamic one is re-evaluated on ``features`` when given."""
        meta = self.get(name)
        if meta.kind == "dynamic" and features is not None:
            snap = latest_snapshot(features)
            return snap.loc[evaluate(meta.rule, snap), "one_id"].astype(str).to_numpy()
        return self.frame(name)["one_id"].astype(str).to_numpy()

    def refresh(self, name: str, features: pd.DataFrame) -> Audience:
        """Re-evaluate a dynamic audience and rewrite its member file."""
        meta = self.get(name)
        if meta.kind != "dynamic":
            raise AudienceError(f"audience {name!r} is static; only dynamic audiences refresh")
        ids = self.members(name, features)
        new = Audience(**{**asdict(meta), "size": len(ids), "features_as_of": _as_of(latest_snapshot(features))})
        return self._write(new, pd.DataFrame({"one_id": ids}), overwrite=True)

    def delete(self, name: str) -> None:
        self.get(name)
        self._path(name, ".parquet").unlink(missing_ok=True)
        self._path(name, ".json").unlink(missing_ok=True)

    def export_csv(self, name: str, path: Path | str, features: pd.DataFrame | None = None,
                   columns: Iterable[str] = (), overwrite: bool = False, encoding: str = "utf-8") -> Path:
        """Write members (and chosen feature ``columns``) to CSV for a channel (SMS, ads, CRM).

        The target is checked first (an existing folder, an existing file without ``overwrite``):
        an export handed to a channel must not silently replace another one. ``encoding``:
        ``utf-8`` for tools, ``utf-8-sig`` (a byte-order mark) for Excel to show Chinese,
        ``gbk`` for older Excel; a value the encoding cannot hold is an error naming it.
        """
        try:
            "".encode(encoding)
        except LookupError:
            raise AudienceError(f"--encoding: unknown encoding {encoding!r} (e.g. utf-8, utf-8-sig, gbk)") from None
        path = check_export_path(path, overwrite)
        frame = self.frame(name) if features is None or self.get(name).kind == "static" else \
            pd.DataFrame({"one_id": self.members(name, features)})
        columns = list(columns)
        if columns:
            if features is None:
                raise AudienceError("exporting feature columns needs the features table")
            snap = latest_snapshot(features)
            missing = [c for c in columns if c not in snap.columns]
            if missing:
                raise AudienceError(f"unknown column(s) for export: {', '.join(missing)}")
            frame = frame.merge(snap[["one_id", *columns]].astype({"one_id": str}), on="one_id", how="left")
        try:
            return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, encoding=encoding))
        except UnicodeEncodeError as exc:  # 𠮷 or an emoji in gbk: name the value, keep any earlier file
            bad = exc.object[exc.start:exc.end] if isinstance(exc.object, str) else "?"
            raise AudienceError(f"--encoding {encoding}: cannot hold {bad!r} found in the export; "
                                "use --encoding utf-8-sig (Excel) or utf-8") from None
        except OSError as exc:  # permissions, a full disk: one line naming the file
            raise AudienceError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def check_export_path(path: Path | str, overwrite: bool = False) -> Path:
    """``path`` when a CSV can be written there, else :class:`AudienceError` saying what to pass instead."""
    path = Path(path)
    if path.is_dir():
        raise AudienceError(f"--out {path}: is a folder; give a file name, e.g. {path / 'audience.csv'}")
    parent = path.parent
    if not parent.exists():
        raise AudienceError(f"--out {path}: folder {parent} does not exist; create it first (mkdir -p {parent})")
    if not parent.is_dir():
        raise AudienceError(f"--out {path}: {parent} is a file, not a folder")
    if path.exists() and not overwrite:
        raise AudienceError(f"--out {path}: exists; pass --overwrite to replace it")
    return path


def overlap(groups: dict[str, Iterable[str]] | Iterable[tuple[str, Iterable[str]]]) -> pd.DataFrame:
    """Pairwise sizes, intersections and Jaccard index of named member sets.

    ``groups`` may be (name, members) pairs, so an audience compared with itself (``overlap A A``)
    is one row at 100% rather than nothing.
    """
    pairs = list(groups.items()) if isinstance(groups, dict) else list(groups)
    names = [str(n) for n, _ in pairs]
    sets = [set(map(str, v)) for _, v in pairs]
    rows = []
    for i in range(len(pairs)):
        for j in range(i + 1, len(pairs)):
            sa, sb = sets[i], sets[j]
            inter = len(sa & sb)
            union = len(sa | sb)
            rows.append({"a": names[i], "b": names[j], "size_a": len(sa), "size_b": len(sb), "intersection": inter,
                         "share_of_a": inter / len(sa) if sa else 0.0,
                         "share_of_b": inter / len(sb) if sb else 0.0,
                         "jaccard": inter / union if union else 0.0})
    return pd.DataFrame(rows, columns=["a", "b", "size_a", "size_b", "intersection", "share_of_a", "share_of_b",
                                       "jaccard"])


HEADER = re.compile(r"(?i)^[a-z _.-]*(id|ids|identifier|customer|user|member|phone|mobile|e-?mail|account|openid|"
                    r"unionid)[a-z _.-]*$")  # column-name-like, no digit: "one_id", "Customer ID", "phone"


def looks_like_header(line: str) -> bool:
    """True for a first line that names a column rather than holding an id (no digits, id-like name)."""
    return bool(HEADER.match(line.strip())) and not any(ch.isdigit() for ch in line)


__all__ = ["Audience", "AudienceError", "AudienceStore", "RuleError", "latest_features", "latest_snapshot", "overlap"]
