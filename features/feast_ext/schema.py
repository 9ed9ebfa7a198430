"""Feast ``Field`` lists from a feature table's Parquet schema.

The feature tables are wide and change as features are added; typing the Feast schema
from the file keeps the definitions declarative without a second list to maintain.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa


def feast_type(arrow_type: pa.DataType):
    """The Feast type of an Arrow column type; ``ValueError`` for types the store does not hold."""
    from feast.types import Bool, Float32, Float64, Int32, Int64, String, UnixTimestamp

    if pa.types.is_floating(arrow_type):
        return Float32 if arrow_type == pa.float32() else Float64
    if pa.types.is_boolean(arrow_type):
        return Bool
    if pa.types.is_integer(arrow_type):
        return Int32 if arrow_type.bit_width <= 16 or arrow_type == pa.int32() else Int64
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_dictionary(arrow_type):
        return String
    if pa.types.is_timestamp(arrow_type):
        return UnixTimestamp
    raise ValueError(f"no Feast type for Arrow type {arrow_type}")


def parquet_fields(path: Path, keys: tuple[str, ...], descriptions: dict[str, str] | None = None) -> list:
    """One ``feast.Field`` per column of the Parquet file at ``path``, except ``keys``.

    ``descriptions`` (column -> text) documents the fields in the registry (``feast ui``).

    Raises ``FileNotFoundError`` naming the file (build the features first) and
    ``ValueError`` naming a column whose type has no Feast equivalent.
    """
    import pyarrow.parquet as pq
    from feast import Field

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: feature table not found; run `portrait features build --as-of DATE` first")
    schema = pq.read_schema(path)
    missing = [k for k in keys if k not in schema.names]
    if missing:
        raise ValueError(f"{path}: missing key column(s) {missing}")
    fields = []
    for col in schema:
        if col.name in keys or col.name.startswith("__"):
            continue
        try:
            fields.append(Field(name=col.name, dtype=feast_type(col.type),
                                description=(descriptions or {}).get(col.name, "")))
        except ValueError as exc:
            raise ValueError(f"{path}: column {col.name!r}: {exc}") from None
    return fields
