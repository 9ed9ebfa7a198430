"""The canonical data model: one schema per input table, and the validator.

Every reader passes its rows through :func:`validate`. A missing required column
is a :class:`SchemaError` naming the file and the column (nothing is written);
a bad row is moved to the rejects with a reason, so that
``input rows == accepted + rejected`` always holds.

Fact tables (events, orders, campaign contacts, profiles) reference a person only
through ``(source, record_id)``, the key of ``identity_records``: raw identifiers
(phone, email, ...) appear in ``identity_records`` alone, and the identity step
replaces them with keyed hashes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SOURCES = ("crm", "app", "miniprogram", "pos", "web")  # the synthetic sources; imports may add others
IDENTIFIER_TYPES = ("member_id", "phone", "email", "unionid", "openid", "device_id", "cookie_id")
EVENT_TYPES = ("view", "click", "search", "add_to_cart", "purchase", "coupon_use", "favorite", "rate")
GENDERS = ("F", "M", "U")


class SchemaError(ValueError):
    """A file cannot be read as the table it claims to be (missing column, unreadable)."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # one of: str, int, float, money (a float read by features.amounts), bool, timestamp
    required: bool = True  # must be present in the input
    nullable: bool = False  # may hold nulls
    min: float | None = None  # inclusive bounds for numbers
    max: float | None = None
    allowed: tuple[str, ...] | None = None  # closed vocabulary for strings
    doc: str = ""


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()  # unique key; later duplicates are rejected
    doc: str = ""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def _ids(*extra: Column) -> tuple[Column, ...]:
    return (
        Column("source", "str", doc="source system, e.g. crm, app, miniprogram, pos, web"),
        Column("record_id", "str", doc="the record's id within its source"),
        *extra,
    )


IDENTITY_RECORDS = TableSchema(
    "identity_records",
    _ids(
        *(Column(t, "str", required=False, nullable=True, doc=f"raw {t} as the source gave it") for t in IDENTIFIER_TYPES),
        Column("observed_at", "timestamp", doc="when the source last saw this record"),
    ),
    key=("source", "record_id"),
    doc="One row per source record with the identifiers that source holds.",
)

PROFILES = TableSchema(
    "profiles",
    _ids(
        Column("birth_year", "int", required=False, nullable=True, min=1900, max=2030),
        Column("gender", "str", required=False, nullable=True, allowed=GENDERS),
        Column("city", "str", required=False, nullable=True),
        Column("reg_channel", "str", required=False, nullable=True, doc="registration channel"),
        Column("occupation", "str", required=False, nullable=True),
        Column("observed_at", "timestamp"),
    ),
    key=("source", "record_id"),
    doc="Profile attributes per source record; merged into golden records by OneID.",
)

EVENTS = TableSchema(
    "events",
    _ids(
        Column("event_type", "str", allowed=EVENT_TYPES),
        Column("item_id", "str", nullable=True, doc="null for searches"),
        Column("channel", "str", required=False, nullable=True),
        Column("ts", "timestamp"),
        Column("session_id", "str", required=False, nullable=True),
        Column("value", "float", required=False, nullable=True, doc="e.g. a rating"),
    ),
    doc="Behaviour events.",
)

ORDERS = TableSchema(
    "orders",
    (
        Column("order_id", "str"),
        *_ids(),
        Column("ts", "timestamp"),
        Column("amount", "money", min=0, doc="paid amount after discount"),
        Column("discount", "money", required=False, nullable=True, min=0),
        Column("coupon_used", "bool", required=False, nullable=True),
        Column("channel", "str", required=False, nullable=True),
        Column("store_id", "str", required=False, nullable=True),
    ),
    key=("order_id",),
    doc="Orders (one row per order).",
)

ORDER_LINES = TableSchema(
    "order_lines",
    (
        Column("order_id", "str"),
        Column("item_id", "str"),
        Column("quantity", "int", min=1),
        Column("unit_price", "money", required=False, nullable=True, min=0),
    ),
    key=("order_id", "item_id"),
    doc="Order lines.",
)

ITEMS = TableSchema(
    "items",
    (
        Column("item_id", "str"),
        Column("category", "str"),
        Column("brand", "str", required=False, nullable=True),
        Column("price", "money", required=False, nullable=True, min=0),
        Column("launch_date", "timestamp", required=False, nullable=True),
        Column("in_stock", "bool", required=False, nullable=True),
        Column("title", "str", required=False, nullable=True),
    ),
    key=("item_id",),
    doc="Item catalog.",
)

CAMPAIGN_CONTACTS = TableSchema(
    "campaign_contacts",
    (
        Column("campaign_id", "str"),
        *_ids(),
        Column("channel", "str", required=False, nullable=True),
        Column("sent_at", "timestamp"),
        Column("responded_at", "timestamp", required=False, nullable=True),
        Column("converted", "bool", required=False, nullable=True),
    ),
    key=("campaign_id", "source", "record_id"),
    doc="Campaign contacts and their responses (the feedback loop).",
)

TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (IDENTITY_RECORDS, PROFILES, EVENTS, ORDERS, ORDER_LINES, ITEMS, CAMPAIGN_CONTACTS)
}


@dataclass
class Validated:
    accepted: pd.DataFrame
    rejects: pd.DataFrame  # the input columns as text, plus _row and _reason
    n_input: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def _coerce(col: Column, s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Return (typed series, mask of values that failed to parse)."""
    present = s.notna()
    if col.kind == "str":
        out = s.astype("string").str.strip()
        out = out.mask(out == "")
        return out, pd.Series(False, index=s.index)
    if col.kind in ("int", "float"):
        num = pd.to_numeric(s, errors="coerce")
        bad = present & num.isna()
        if col.kind == "int":
            frac = num.notna() & (num != np.floor(num))
            bad |= frac
            num = num.mask(frac).astype("Int64")
        else:
            num = num.astype("float64")
        return num, bad
    if col.kind == "money":  # $1,234.50, 12,50 EUR: the column's decimal mark wins, rows showing the other are bad
        from features.amounts import read_amounts

        num, bad, _ = read_amounts(s)
        return num.set_axis(s.index), bad.set_axis(s.index)
    if col.kind == "bool":
        if s.dtype == bool:
            return s.astype("boolean"), pd.Series(False, index=s.index)
        txt = s.astype("string").str.strip().str.lower()
        mapped = txt.map({"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False})
        bad = present & mapped.isna()
        return mapped.astype("boolean"), bad
    if col.kind == "timestamp":
        if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s):
            ts = s if isinstance(s.dtype, pd.DatetimeTZDtype) else s.dt.tz_localize("UTC")
        else:
            from features.timeparse import to_times

            ts = to_times(s)  # one format for the column: 04/12 and 27/11 never read two ways
        # microseconds: Feast's DuckDB store fails on nanosecond tz-aware timestamps
        ts = ts.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        return ts, present & ts.isna()
    raise ValueError(f"unknown column kind {col.kind!r}")


def validate(df: pd.DataFrame, schema: TableSchema, origin: str = "<frame>") -> Validated:
    """Validate and type ``df`` against ``schema``.

    Raises :class:`SchemaError` naming ``origin`` and the column when a required
    column is missing. Returns typed accepted rows (schema column order, absent
    optional columns added as nulls) and rejected rows with one reason each.
    """
    missing = [c.name for c in schema.columns if c.required and c.name not in df.columns]
    if missing:
        raise SchemaError(
            f"{origin}: table '{schema.name}' is missing required column(s) {missing}; "
            f"found {list(df.columns)}"
        )
    df = df.reset_index(drop=True)
    n = len(df)
    reason = pd.Series(pd.NA, index=df.index, dtype="string")

    def flag(mask: pd.Series, text: str | pd.Series) -> None:
        new = mask & reason.isna()
        if new.any():
            reason.loc[new] = text if isinstance(text, str) else text[new]

    out: dict[str, pd.Series] = {}
    for col in schema.columns:
        if col.name not in df.columns:
            out[col.name] = _coerce(col, pd.Series([None] * n, index=df.index, dtype="object"))[0]
            continue
        raw = df[col.name]
        typed, bad = _coerce(col, raw)
        what = "amount" if col.kind == "money" else col.kind
        flag(bad, f"{col.name}: not a valid {what}: " + raw.astype("string").fillna(""))
        if not col.nullable:
            flag(typed.isna() & ~bad, f"{col.name}: missing value")
        if col.min is not None:
            flag(typed.notna() & (typed < col.min), f"{col.name}: below minimum {col.min}")
        if col.max is not None:
            flag(typed.notna() & (typed > col.max), f"{col.name}: above maximum {col.max}")
        if col.allowed is not None:
            outside = typed.notna() & ~typed.isin(col.allowed)
            flag(outside, f"{col.name}: not one of {list(col.allowed)}: " + typed.fillna(""))
        out[col.name] = typed
    typed_df = pd.DataFrame(out, index=df.index)
    if schema.key:
        dup = typed_df.duplicated(list(schema.key), keep="first") & reason.isna()
        flag(dup, f"duplicate key {list(schema.key)}")
    bad_rows = reason.notna()
    rejects = df.loc[bad_rows].astype("string")
    rejects.insert(0, "_reason", reason[bad_rows])
    rejects.insert(0, "_row", rejects.index.astype("int64"))
    accepted = typed_df.loc[~bad_rows].reset_index(drop=True)
    counts = reason[bad_rows].str.split(":").str[0].value_counts().to_dict()
    return Validated(accepted, rejects.reset_index(drop=True), n, {str(k): int(v) for k, v in counts.items()})
