"""The canonical data model: one schema per input table, and the validator.

Every reader passes its rows through :func:`validate`. A missing required column
is a :class:`SchemaError` naming the file and the column (nothing is written);
a bad row is moved to the rejects with a reason, so that
``input rows == accepted + rejected + folded`` always holds (``folded``: repeated order lines merged
into one, see :mod:`features.schema_orders`).

Fact tables (events, orders, campaign contacts, profiles) reference a person only
through ``(source, record_id)``, the key of ``identity_records``: raw identifiers
(phone, email, ...) appear in ``identity_records`` alone, and the identity step
replaces them with keyed hashes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.schema_orders import LINE_HEADERS, REFUND_HEADERS, fold_lines, order_checks

SOURCES = ("crm", "app", "miniprogram", "pos", "web")  # the synthetic sources; imports may add others
IDENTIFIER_TYPES = ("member_id", "phone", "email", "unionid", "openid", "device_id", "cookie_id")
EVENT_TYPES = ("view", "click", "search", "add_to_cart", "purchase", "coupon_use", "favorite", "rate")
GENDERS = ("F", "M", "U")
# what app and mini-program exports call the event types (GA4 names, Chinese labels), matched case-insensitively
EVENT_ALIASES = (("浏览", "view"), ("查看", "view"), ("view_item", "view"), ("page_view", "view"), ("pageview", "view"),
                 ("点击", "click"), ("select_item", "click"), ("搜索", "search"), ("加购", "add_to_cart"),
                 ("加入购物车", "add_to_cart"), ("add-to-cart", "add_to_cart"), ("addtocart", "add_to_cart"),
                 ("购买", "purchase"), ("支付", "purchase"), ("用券", "coupon_use"), ("使用优惠券", "coupon_use"),
                 ("收藏", "favorite"), ("add_to_wishlist", "favorite"), ("favourite", "favorite"), ("评分", "rate"),
                 ("rating", "rate"))
# what CRM exports write instead (matched case-insensitively): a Chinese CRM's 男/女 rejected whole profiles
GENDER_ALIASES = (("女", "F"), ("女性", "F"), ("female", "F"), ("woman", "F"), ("男", "M"), ("男性", "M"),
                  ("male", "M"), ("man", "M"), ("未知", "U"), ("保密", "U"), ("unknown", "U"))


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
    allowed: tuple[str, ...] | None = None  # closed vocabulary for strings (matched case-insensitively)
    aliases: tuple[tuple[str, str], ...] = ()  # other spellings of allowed values: (lower case, allowed value)
    identifier: bool = False  # an id or contact: NFKC-folded (full-width １３９/＠), whole floats as integers
    happened: bool = False  # a time something happened: not after now + 1 day, not before 1970-01-02
    headers: tuple[str, ...] = ()  # other header names shops give this column (read as it, with a note)
    doc: str = ""


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()  # unique key; later duplicates are rejected
    alt_key: tuple[str, ...] = ()  # the key of rows holding all its columns (order_lines: order_id, line_no)
    # rows sharing ``key`` folded into one instead of rejected: frame -> (frame, rows folded)
    fold: Callable[[pd.DataFrame], tuple[pd.DataFrame, int]] | None = None
    checks: Callable[[pd.DataFrame], list[tuple[pd.Series, str]]] | None = None  # -> [(bad rows, reason)]
    merge_key: tuple[str, ...] = ()  # an import's rows replace earlier rows by this key (default: key)
    doc: str = ""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def _ids(*extra: Column) -> tuple[Column, ...]:
    return (
        Column("source", "str", identifier=True, doc="source system, e.g. crm, app, miniprogram, pos, web"),
        Column("record_id", "str", identifier=True, doc="the record's id within its source"),
        *extra,
    )


IDENTITY_RECORDS = TableSchema(
    "identity_records",
    _ids(
        *(Column(t, "str", required=False, nullable=True, identifier=True, doc=f"raw {t} as the source gave it") for t in IDENTIFIER_TYPES),
        Column("observed_at", "timestamp", happened=True, doc="when the source last saw this record"),
    ),
    key=("source", "record_id"),
    doc="One row per source record with the identifiers that source holds.",
)

PROFILES = TableSchema(
    "profiles",
    _ids(
        Column("birth_year", "int", required=False, nullable=True, min=1900, max=2030),
        Column("gender", "str", required=False, nullable=True, allowed=GENDERS, aliases=GENDER_ALIASES),
        Column("city", "str", required=False, nullable=True),
        Column("reg_channel", "str", required=False, nullable=True, doc="registration channel"),
        Column("occupation", "str", required=False, nullable=True),
        Column("observed_at", "timestamp", happened=True),
    ),
    key=("source", "record_id"),
    doc="Profile attributes per source record; merged into golden records by OneID.",
)

EVENTS = TableSchema(
    "events",
    _ids(
        Column("event_type", "str", allowed=EVENT_TYPES, aliases=EVENT_ALIASES),
        Column("item_id", "str", nullable=True, identifier=True, doc="null for searches"),
        Column("channel", "str", required=False, nullable=True),
        Column("ts", "timestamp", happened=True),
        Column("session_id", "str", required=False, nullable=True, identifier=True),
        Column("value", "float", required=False, nullable=True, doc="e.g. a rating"),
    ),
    doc="Behaviour events.",
)

ORDERS = TableSchema(
    "orders",
    (
        Column("order_id", "str", identifier=True),
        *_ids(),
        Column("ts", "timestamp", happened=True),
        Column("amount", "money", doc="paid amount after discount; negative: a refund (its own row and order id)"),
        Column("discount", "money", required=False, nullable=True, min=0),
        Column("coupon_used", "bool", required=False, nullable=True),
        Column("channel", "str", required=False, nullable=True),
        Column("store_id", "str", required=False, nullable=True, identifier=True),
        Column("refund_of", "str", required=False, nullable=True, identifier=True, headers=REFUND_HEADERS,
               doc="on a refund (negative amount): the order it refunds, when the shop exports it"),
    ),
    key=("order_id",),
    checks=order_checks,
    doc="Orders (one row per order) and refunds (negative amount, optionally naming the order in refund_of).",
)

ORDER_LINES = TableSchema(
    "order_lines",
    (
        Column("order_id", "str", identifier=True),
        Column("item_id", "str", identifier=True),
        Column("quantity", "int", min=1),
        Column("unit_price", "money", required=False, nullable=True, min=0),
        Column("line_no", "str", required=False, nullable=True, identifier=True, headers=LINE_HEADERS,
               doc="the line within its order; without it, lines of one item in one order are merged"),
    ),
    key=("order_id", "item_id"),
    alt_key=("order_id", "line_no"),
    fold=fold_lines,
    merge_key=("order_id",),  # an order's lines come together: a file's order replaces all its earlier lines
    doc="Order lines.",
)

ITEMS = TableSchema(
    "items",
    (
        Column("item_id", "str", identifier=True),
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
        Column("campaign_id", "str", identifier=True),
        *_ids(),
        Column("channel", "str", required=False, nullable=True),
        Column("sent_at", "timestamp", happened=True),
        Column("responded_at", "timestamp", required=False, nullable=True, happened=True),
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
    rejects: pd.DataFrame  # the input columns as text, plus _data_row (1-based, header excluded) and _reason
    n_input: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    folded: int = 0  # input rows merged into another row of the same key (TableSchema.fold), neither kept nor rejected


@dataclass(frozen=True)
class TimeOptions:
    """How text and naive times are read (``portrait data import --dayfirst --tz``)."""

    dayfirst: bool = False  # 03/04/2026 is 3 April, not March 4 (ISO and unambiguous dates are unaffected)
    tz: str = "UTC"  # naive times are wall-clock times of this zone, stored as UTC
    now: pd.Timestamp | None = None  # "now" for the future-time check; None: the wall clock at validation


_EXCEL_ROUNDED = r"[0-9]\.[0-9]+[eE]\+[0-9]{1,3}"  # how Excel writes 13912345678 in a General cell: 1.39123E+10
OLDEST = pd.Timestamp("1970-01-02", tz="UTC")  # earlier times are epoch-zero placeholders, not events


def _as_text(s: pd.Series) -> pd.Series:
    """Whole floats as integer text: a Parquet phone 13912345678.0 or record id 101.0 is not "…0" / "101.0"."""
    if pd.api.types.is_float_dtype(s.dtype):
        whole = s.notna() & (s == np.floor(s)) & (s.abs() < 2**63)
        text = s.astype("string")
        text[whole] = s[whole].astype("int64").astype("string")
        return text
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) != "string":  # CSV text: nothing to do
        return s.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else v)
    return s


def _coerce(col: Column, s: pd.Series, when: TimeOptions) -> tuple[pd.Series, pd.Series, str | pd.Series]:
    """Return (typed series, mask of values that failed to parse, why they failed)."""
    present = s.notna()
    what = f"not a valid {'amount' if col.kind == 'money' else col.kind}"
    if col.kind == "str":
        out = (_as_text(s) if col.identifier else s).astype("string").str.strip()
        if col.identifier:  # full-width digits and ＠ from CJK input methods are the same identifier
            out = out.str.normalize("NFKC").str.strip()
        if col.allowed is not None:  # "View", "f": the vocabulary is closed, its case is not information
            canon = out.str.lower().map({**dict(col.aliases), **{a.lower(): a for a in col.allowed}})
            out = canon.where(canon.notna(), out).astype("string")
        out = out.mask(out == "")
        if col.identifier:  # 1.39123E+10: Excel showed a long number column in scientific notation and rounded it
            mangled = out.str.fullmatch(_EXCEL_ROUNDED).fillna(False).astype(bool)
            if mangled.any():
                return out, mangled, ("a number Excel rounded (scientific notation); format the column as text "
                                      "in the spreadsheet and export again")
        return out, pd.Series(False, index=s.index), what
    if col.kind in ("int", "float"):
        num = pd.to_numeric(s, errors="coerce")
        bad = present & num.isna()
        if col.kind == "int":
            frac = num.notna() & (num != np.floor(num))
            bad |= frac
            num = num.mask(frac).astype("Int64")
        else:
            num = num.astype("float64")
        return num, bad, what
    if col.kind == "money":  # $1,234.50, 12,50 EUR: the column's decimal mark wins, rows showing the other are bad
        from features.amounts import MONEY_LIMIT, read_amounts

        num, bad, _ = read_amounts(s)
        num, bad = num.set_axis(s.index), bad.set_axis(s.index)
        huge = ~bad & (num.abs() >= MONEY_LIMIT)
        why = pd.Series(what, index=s.index, dtype="string").mask(huge, f"too large to hold to the cent "
                                                                        f"(±{MONEY_LIMIT:,.0f} or more)")
        return num, bad | huge, why
    if col.kind == "bool":
        if s.dtype == bool:
            return s.astype("boolean"), pd.Series(False, index=s.index), what
        txt = s.astype("string").str.strip().str.lower()
        mapped = txt.map({"true": True, "1": True, "yes": True, "y": True, "t": True, "是": True, "有": True,
                          "false": False, "0": False, "no": False, "n": False, "f": False, "否": False, "无": False})
        bad = present & mapped.isna()
        return mapped.astype("boolean"), bad, what
    if col.kind == "timestamp":
        from features.timeparse import read_times

        # one format for the column: 04/12 and 27/11 never read two ways; epochs in one unit
        ts, note = read_times(s, dayfirst=when.dayfirst, tz=when.tz)
        # microseconds: Feast's DuckDB store fails on nanosecond tz-aware timestamps
        ts = ts.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        return ts, present & ts.isna(), note.fillna(what)
    raise ValueError(f"unknown column kind {col.kind!r}")


def validate(df: pd.DataFrame, schema: TableSchema, origin: str = "<frame>",
             when: TimeOptions | None = None) -> Validated:
    """Validate and type ``df`` against ``schema``.

    Raises :class:`SchemaError` naming ``origin`` and the column when a required
    column is missing. Returns typed accepted rows (schema column order, absent
    optional columns added as nulls) and rejected rows with one reason each.
    Key duplicates are judged among otherwise accepted rows: a rejected row shadows nothing.
    """
    when = when or TimeOptions()
    missing = [c.name for c in schema.columns if c.required and c.name not in df.columns]
    if missing:
        raise SchemaError(
            f"{origin}: table '{schema.name}' is missing required column(s) {missing}; "
            f"found {list(df.columns)}"
        )
    df = df.reset_index(drop=True)
    n = len(df)
    reason = pd.Series(pd.NA, index=df.index, dtype="string")
    latest = (when.now or pd.Timestamp.now(tz="UTC")) + pd.Timedelta(days=1)

    def flag(mask: pd.Series, text: str | pd.Series, values: pd.Series | None = None) -> None:
        """Give the rows of ``mask`` not yet rejected the reason ``text`` (+ ": value", rendered for them only)."""
        new = mask & reason.isna()
        if new.any():
            text = text if isinstance(text, str) else text[new]
            reason.loc[new] = text if values is None else text + ": " + values[new].astype("string").fillna("")

    out: dict[str, pd.Series] = {}
    for col in schema.columns:
        if col.name not in df.columns:
            out[col.name] = _coerce(col, pd.Series([None] * n, index=df.index, dtype="object"), when)[0]
            continue
        raw = df[col.name]
        typed, bad, why = _coerce(col, raw, when)
        flag(bad, f"{col.name}: " + why, raw)
        if not col.nullable:
            flag(typed.isna() & ~bad, f"{col.name}: missing value")
        if col.min is not None:
            flag(typed.notna() & (typed < col.min), f"{col.name}: below minimum {col.min}")
        if col.max is not None:
            flag(typed.notna() & (typed > col.max), f"{col.name}: above maximum {col.max}")
        if col.allowed is not None:
            outside = typed.notna() & ~typed.isin(col.allowed)
            flag(outside, f"{col.name}: not one of {list(col.allowed)}", typed)
        if col.happened:  # one order dated 2099 would move every default cutoff past it
            flag(typed > latest, f"{col.name}: time_in_future (after {latest:%Y-%m-%d %H:%M} UTC)", typed)
            flag(typed < OLDEST, f"{col.name}: time_too_old (before 1970-01-02)", typed)
        out[col.name] = typed
    typed_df = pd.DataFrame(out, index=df.index)
    for mask, text in (schema.checks(typed_df) if schema.checks else []):
        flag(mask, text)
    # rows holding every alt_key column are keyed by it; the others by key (folded when the schema says so)
    alt = (typed_df[list(schema.alt_key)].notna().all(axis=1) if schema.alt_key
           else pd.Series(False, index=df.index))
    for key, rows in ((schema.alt_key, alt), (schema.key, ~alt)):
        if key and not (key == schema.key and schema.fold):
            ok = reason.isna() & rows
            dup = typed_df.loc[ok].duplicated(list(key), keep="first").reindex(df.index, fill_value=False)
            flag(dup, f"duplicate key {list(key)}")
    bad_rows = reason.notna()
    rejects = df.loc[bad_rows].astype("string")
    rejects.insert(0, "_reason", reason[bad_rows])
    rejects.insert(0, "_data_row", rejects.index.astype("int64") + 1)  # as a spreadsheet counts below the header
    accepted, folded = typed_df.loc[~bad_rows], 0
    if schema.fold is not None and (~alt[~bad_rows]).any():
        folded_rows, folded = schema.fold(accepted.loc[~alt[~bad_rows]])
        accepted = pd.concat([accepted.loc[alt[~bad_rows]], folded_rows]) if alt.any() else folded_rows
    accepted = accepted.reset_index(drop=True)
    counts = reason[bad_rows].str.split(":").str[0].value_counts().to_dict()
    return Validated(accepted, rejects.reset_index(drop=True), n, {str(k): int(v) for k, v in counts.items()}, folded)
