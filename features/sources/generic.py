"""Import any CSV/TSV/Parquet file as a canonical table, with a column mapping.

The mapping says which input column feeds each canonical column, and may set
constants (e.g. ``source: pos``). It can come from a YAML file::

    table: orders            # one of features.schema.TABLES
    columns:                 # canonical name: input column
      order_id: OrderNo
      record_id: CustomerCode
      ts: PaidAt
      amount: Total
    constants:               # canonical name: fixed value for every row
      source: pos
    dayfirst: false          # 03/04/2026 is March 4 (true: 3 April)
    tz: Asia/Shanghai        # naive times are this zone's wall clock (default UTC)
    encoding: gbk            # the file's text encoding (default utf-8)

or from ``--map canonical=input`` / ``--set canonical=value`` CLI options. Unmapped
canonical columns are taken from input columns of the same name, matched ignoring
case and punctuation (``E-mail`` is ``email``) when exactly one input column fits.

An import adds to what is there: the rows of the sources in the file replace that
source's rows of the table and other sources' rows are kept (a POS export after the
CRM one keeps the CRM records); a table without a ``source`` column is updated by key
(the file's rows win). ``append=True`` adds an increment (this month's events) to every
earlier row, the file's rows winning on a key, identical rows not added twice.
``replace=True`` replaces the whole table. Validation and
rejects are the same as for every other reader; nothing is written unless the file
has rows, some are accepted and both output folders can be written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import yaml

from features.io import read_frame, read_table, write_outputs
from features.schema import TABLES, SchemaError, TableSchema, TimeOptions, Validated, validate


@dataclass(frozen=True)
class ImportSpec:
    table: str  # canonical table name
    columns: dict[str, str] = field(default_factory=dict)  # canonical column -> input column
    constants: dict[str, str] = field(default_factory=dict)  # canonical column -> constant value
    sep: str | None = None  # CSV separator; None guesses from the file (and Excel's "sep=;" line)
    dayfirst: bool = False  # ambiguous text dates (03/04/2026) day-first; default month-first
    tz: str = "UTC"  # zone of naive times, converted to UTC
    encoding: str = "utf-8"  # text encoding of CSV/TSV files (a UTF-8 byte-order mark is fine)

    @property
    def schema(self) -> TableSchema:
        if not self.table:
            raise SchemaError(f"no table given: pass --table (-t) with one of {', '.join(sorted(TABLES))}, "
                              "or a --mapping file with a table: line")
        if self.table not in TABLES:
            raise SchemaError(f"unknown table {self.table!r}; choose one of {sorted(TABLES)}")
        return TABLES[self.table]


@dataclass
class ImportResult:
    validated: Validated
    merge: str  # what happened to the rows already in the table, in words
    notes: list[str] = field(default_factory=list)  # columns matched by a near-miss name, columns not used
    warnings: list[str] = field(default_factory=list)  # ambiguous near-miss names, not used


_MAPPING_KEYS = {"table": str, "columns": dict, "constants": dict, "sep": str, "dayfirst": bool, "tz": str,
                 "encoding": str}


def load_spec(path: Path) -> ImportSpec:
    """Read an :class:`ImportSpec` from a YAML mapping file; :class:`SchemaError` naming the bad key."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8-sig")) or {}  # UTF-8 under any locale (LANG=C)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SchemaError(f"{path}: cannot read the mapping ({' '.join(str(exc).split())})") from exc
    if not isinstance(raw, dict):
        raise SchemaError(f"{path}: the mapping must be key: value pairs (table, columns, ...), "
                          f"not a {type(raw).__name__}")
    unknown = set(raw) - set(_MAPPING_KEYS)
    if unknown:
        raise SchemaError(f"{path}: unknown mapping key(s) {sorted(map(str, unknown))}")
    if "table" not in raw:
        raise SchemaError(f"{path}: the mapping needs a 'table' key")
    for key, kind in _MAPPING_KEYS.items():
        value = raw.get(key)
        if value is not None and not isinstance(value, kind):
            shape = {dict: "a mapping (canonical: input, one per line)", bool: "true or false"}.get(kind, "text")
            raise SchemaError(f"{path}: '{key}' must be {shape}, got {type(value).__name__} {value!r}")
    return ImportSpec(
        table=str(raw["table"]),
        columns={str(k): str(v) for k, v in (raw.get("columns") or {}).items()},
        constants={str(k): str(v) for k, v in (raw.get("constants") or {}).items()},
        sep=raw.get("sep"), dayfirst=bool(raw.get("dayfirst", False)), tz=raw.get("tz") or "UTC",
        encoding=raw.get("encoding") or "utf-8",
    )


def _squash(name: object, keep_letters: bool = False) -> str:
    """A column name without case, punctuation or width: ``E-mail``, ``E_MAIL`` and ``Ｅmail`` are ``email``.

    ``keep_letters`` keeps letters of every script (``行号``), for the header names of ``Column.headers``.
    """
    text = unicodedata.normalize("NFKC", str(name)).lower()
    return re.sub(r"[\W_]", "", text) if keep_letters else re.sub(r"[^0-9a-z]", "", text)


def apply_mapping(df: pd.DataFrame, spec: ImportSpec, origin: str,
                  notes: list[str] | None = None, warnings: list[str] | None = None) -> pd.DataFrame:
    """Rename/select input columns to canonical names and add constants.

    Appends to ``notes`` the near-miss names read as canonical columns and the input columns not
    used, and to ``warnings`` the near-miss names that fit more than one way (none is used).
    """
    notes = [] if notes is None else notes
    warnings = [] if warnings is None else warnings
    schema = spec.schema
    bad_targets = sorted((set(spec.columns) | set(spec.constants)) - set(schema.names))
    if bad_targets:
        raise SchemaError(f"{origin}: mapping names column(s) {bad_targets} that table '{schema.name}' does not have "
                          f"(its columns: {', '.join(schema.names)})")
    missing_inputs = sorted(v for v in spec.columns.values() if v not in df.columns)
    if missing_inputs:
        raise SchemaError(f"{origin}: mapped input column(s) {missing_inputs} not found; found {list(df.columns)}")
    claimed = set(spec.columns.values()) | {n for n in schema.names if n in df.columns}
    by_name = {c.name: c for c in schema.columns}
    out = pd.DataFrame(index=df.index)
    used: set[str] = set()
    for name in schema.names:
        source = (None if name in spec.constants else spec.columns.get(name)
                  or (name if name in df.columns else None))
        if name in spec.constants:
            out[name] = spec.constants[name]
            continue
        spellings = {_squash(name), *(_squash(h, keep_letters=True) for h in by_name[name].headers)}
        near = [c for c in df.columns if c not in claimed and c != source
                and (_squash(c) == _squash(name) or _squash(c, keep_letters=True) in spellings)]
        if source is None and len(near) == 1:
            source = near[0]
            notes.append(f"read column {source!r} as {name}")
        elif near:
            taken = f"{name} is read from {source!r}" if source else f"pass --map {name}=<column>"
            warnings.append(f"column(s) {near} look like {name} but were not used ({taken})")
        if source is not None:
            out[name] = df[source]
            used.add(source)
    unused = [c for c in df.columns if c not in used]
    _require(schema, out, unused, origin)
    if unused:
        notes.append(f"not imported (no canonical column of that name): {unused}")
    return out


def _require(schema: TableSchema, mapped: pd.DataFrame, unused: list, origin: str) -> None:
    """Raise naming the required columns no input column or constant feeds, and the file's columns left over."""
    missing = [c.name for c in schema.columns if c.required and c.name not in mapped.columns]
    if not missing:
        return
    left = (f"the file's columns not mapped to one of the table: {', '.join(map(repr, unused))}" if unused
            else "every column of the file is mapped already")
    raise SchemaError(f"{origin}: table '{schema.name}' needs column(s) {', '.join(missing)} (read under these "
                      f"names in any case and punctuation); {left}; name the file's column with --map {missing[0]}=<file column> "
                      f"(columns: in a mapping file) or give every row one value with --set {missing[0]}=<value>")


def _merge(old: pd.DataFrame, new: pd.DataFrame, schema: TableSchema,
           append: bool = False) -> tuple[pd.DataFrame, str]:
    """``old`` updated by ``new``: per source where the table has one, else per key; the words for it.

    ``append`` (an increment: this month's events) keeps every earlier row of the file's sources too;
    a key the file brings again still takes the file's row, and in a table without a key a row equal
    in every column to an earlier one is not added twice (importing the same file again adds nothing).
    """
    rest, how, kept = old, "", "earlier rows"
    if append and not schema.key:  # no key to match on: a row equal in every column is the same row
        cols = list(schema.names)
        seen = pd.MultiIndex.from_frame(old[cols].astype("string").fillna("\x00"))
        dup = pd.MultiIndex.from_frame(new[cols].astype("string").fillna("\x00")).isin(seen)
        new = new[~dup]
        how = f"appended {len(new):,} rows, skipped {int(dup.sum()):,} already in the table"
    elif not append and "source" in schema.names:
        sources = sorted(new["source"].dropna().unique())
        mine = old["source"].isin(sources)
        rest, how = old[~mine], f"replaced {int(mine.sum()):,} earlier rows of source {', '.join(sources)}"
        kept = "rows of other sources"
    if schema.key:  # a key the file brings again: the file's row wins (also across sources)
        key = list(schema.merge_key or schema.key)
        again = pd.MultiIndex.from_frame(rest[key].astype("string")).isin(
            pd.MultiIndex.from_frame(new[key].astype("string")))
        if again.any() or not how:
            how = ", ".join(filter(None, [how, f"replaced {int(again.sum()):,} rows with the same {'/'.join(key)}"]))
        rest = rest[~again]
    rest = rest[schema.names].copy()
    for col in schema.names:  # old rows in the new rows' types (both were typed by the same schema)
        rest[col] = rest[col].astype(new[col].dtype)
    merged = pd.concat([rest, new], ignore_index=True)
    return merged, f"{how}; kept {len(rest):,} {kept}"


def import_file(path: Path, spec: ImportSpec, out_dir: Path, rejects_dir: Path,
                replace: bool = False, now: pd.Timestamp | None = None, append: bool = False) -> ImportResult:
    """Read ``path``, map it to ``spec.table``, validate, merge into the table; write table and rejects atomically.

    Everything is checked before anything is written: a file without data rows, without one accepted
    row, an existing table that cannot be read, or an output folder that cannot be made is a
    :class:`SchemaError` and leaves the table and the rejects as they were.
    """
    path = Path(path)
    schema = spec.schema
    if replace and append:
        raise SchemaError("--replace and --append contradict each other: pick one")
    try:
        ZoneInfo(spec.tz)
    except (ValueError, ZoneInfoNotFoundError):
        raise SchemaError(f"unknown time zone {spec.tz!r} (--tz); use an IANA name such as Asia/Shanghai or UTC"
                          ) from None
    df = read_frame(path, sep=spec.sep, encoding=spec.encoding)
    if df.empty:
        raise SchemaError(f"{path}: no data rows (only a header); nothing imported, the table is unchanged")
    notes: list[str] = []
    warnings: list[str] = []
    mapped = apply_mapping(df, spec, str(path), notes, warnings)
    result = validate(mapped, schema, str(path), TimeOptions(dayfirst=spec.dayfirst, tz=spec.tz, now=now))
    if result.accepted.empty:
        first = result.rejects.iloc[0]
        raise SchemaError(f"{path}: no row accepted ({len(result.rejects):,} rejected: {result.reasons}; first, "
                          f"data row {first['_data_row']}: {first['_reason']}); the table is unchanged")
    target = Path(out_dir) / f"{schema.name}.parquet"
    table, merge = result.accepted, "new table"
    if target.exists():
        if replace:
            merge = "replaced the whole table (--replace)"
        else:
            try:
                old = read_table(target, schema)
            except SchemaError as exc:
                raise SchemaError(f"{exc}; cannot merge into it: pass --replace to replace the table") from None
            table, merge = _merge(old, result.accepted, schema, append=append)
    if result.folded:  # never silent: the lines were not lost, they were added up
        notes.append(f"merged {result.folded:,} repeated line(s) of an item in an order into the first one "
                     "(quantities summed, unit_price quantity-weighted); a line_no column keeps lines apart")
    if schema.name == "orders":
        notes += refund_notes(result.accepted, table)
    write_outputs(table, result.rejects, schema.name, out_dir, rejects_dir)  # checks both folders first
    return ImportResult(result, merge, notes, warnings)


def refund_notes(new: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """What the import says about the file's refunds: how many, and how many name an order not in ``table``."""
    from features.returns import is_refund

    def refunds(df: pd.DataFrame) -> np.ndarray:  # as the feature build reads them
        return is_refund(df["amount"], df["refund_of"] if "refund_of" in df.columns else [None] * len(df))

    back = new[refunds(new)]
    if back.empty:
        return []
    named = back["refund_of"].dropna() if "refund_of" in back.columns else pd.Series([], dtype=object)
    unknown = named[~named.isin(table.loc[~refunds(table), "order_id"])]
    out = [f"{len(back):,} refund(s) (negative amount, or 0 naming an order), {len(named):,} naming the order they refund"]
    if len(unknown):
        out.append(f"{len(unknown):,} refund(s) name an order not in the table (e.g. {unknown.iloc[0]!r}): kept, "
                   "and settled against the customer's purchases of their day like refunds naming no order")
    return out
