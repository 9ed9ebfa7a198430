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

or from ``--map canonical=input`` / ``--set canonical=value`` CLI options.
Validation and rejects are the same as for every other reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from features.io import load_validated, read_frame
from features.schema import TABLES, SchemaError, TableSchema, Validated


@dataclass(frozen=True)
class ImportSpec:
    table: str  # canonical table name
    columns: dict[str, str] = field(default_factory=dict)  # canonical column -> input column
    constants: dict[str, str] = field(default_factory=dict)  # canonical column -> constant value
    sep: str | None = None  # CSV separator; None guesses from the file suffix

    @property
    def schema(self) -> TableSchema:
        if self.table not in TABLES:
            raise SchemaError(f"unknown table {self.table!r}; choose one of {sorted(TABLES)}")
        return TABLES[self.table]


def load_spec(path: Path) -> ImportSpec:
    """Read an :class:`ImportSpec` from a YAML mapping file."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SchemaError(f"{path}: cannot read the mapping ({exc})") from exc
    unknown = set(raw) - {"table", "columns", "constants", "sep"}
    if unknown:
        raise SchemaError(f"{path}: unknown mapping key(s) {sorted(unknown)}")
    if "table" not in raw:
        raise SchemaError(f"{path}: the mapping needs a 'table' key")
    return ImportSpec(
        table=str(raw["table"]),
        columns={str(k): str(v) for k, v in (raw.get("columns") or {}).items()},
        constants={str(k): str(v) for k, v in (raw.get("constants") or {}).items()},
        sep=raw.get("sep"),
    )


def apply_mapping(df: pd.DataFrame, spec: ImportSpec, origin: str) -> pd.DataFrame:
    """Rename/select input columns to canonical names and add constants."""
    schema = spec.schema
    bad_targets = sorted((set(spec.columns) | set(spec.constants)) - set(schema.names))
    if bad_targets:
        raise SchemaError(f"{origin}: mapping names column(s) {bad_targets} that table '{schema.name}' does not have")
    missing_inputs = sorted(v for v in spec.columns.values() if v not in df.columns)
    if missing_inputs:
        raise SchemaError(f"{origin}: mapped input column(s) {missing_inputs} not found; found {list(df.columns)}")
    out = pd.DataFrame(index=df.index)
    for name in schema.names:
        if name in spec.constants:
            out[name] = spec.constants[name]
        elif name in spec.columns:
            out[name] = df[spec.columns[name]]
        elif name in df.columns:
            out[name] = df[name]
    return out


def import_file(path: Path, spec: ImportSpec, out_dir: Path, rejects_dir: Path) -> Validated:
    """Read ``path``, map it to ``spec.table``, validate, and write table and rejects atomically."""
    df = read_frame(Path(path), sep=spec.sep)
    mapped = apply_mapping(df, spec, str(path))
    return load_validated(mapped, spec.schema, out_dir, rejects_dir, origin=str(path))
