"""Money columns as exported by shops and spreadsheets, read into floats with one convention per column.

``parse_amounts`` accepts plain numbers and the usual text renderings of money:

- currency symbols and codes around the number: ``$12.50``, ``12,50 €``, ``USD 1,234.00``, ``CN¥88``,
  ``5 kr``, ``88元`` (ISO codes and local signs only: ``12 kg`` is refused);
- whole amounts written ``12.-`` or ``12,- €``;
- thousands separators: ``1,234.50``, ``1.234,50``, ``1 234,50``, ``1'234.50``;
- a decimal comma: ``12,50``;
- negatives as ``-12.50``, ``12.50-`` or accounting's ``(12.50)`` (returns and refunds).

The decimal mark is decided once for the whole column, like dates in :mod:`features.timeparse`:
a value with both marks shows it (the last one is decimal); otherwise a comma followed by other
than three digits (``12,5``, ``12,50``) means a decimal comma, and commas that only ever group
three digits (``1,234``) are thousands separators; with no such evidence a point is decimal
(``1.234`` is one and a bit). A column that uses both conventions, or a
value that is not a number after this clean-up, is an error naming the column, the row and the
value. Nothing is guessed per value.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

# from 2**46 (70,368,744,177,664) up a double's step passes a cent: such an amount cannot be held to the cent, and
# its sums run towards inf (features of inf); the import rejects it (features.schema), naming the column and row
MONEY_LIMIT = 2.0 ** 46

# currency symbols (any character of Unicode category Sc), ISO 4217 codes (USD, EUR, CNY)
# and the local signs written in letters, before or after the number; any other word ("12 units",
# "12 kg", "12 pcs") stays and fails; capitals glued to a symbol are its country (US$, HK$, CN¥, R$)
_SYMBOLS = "".join(chr(c) for c in range(0x20, 0x10000) if unicodedata.category(chr(c)) == "Sc")
_ISO4217 = (  # active codes; "12 PCS" or "BOX 12" are not money
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF "
    "CHF CLP CNH CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD "
    "HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL "
    "LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR "
    "PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND "
    "TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL").split()
_LOCAL = ("RMB", "kr", "Kr", "zł", "Kč", "Ft", "lei", "Fr", "Rs", "RM", "Rp", "руб", "грн", "元", "円", "圆", "원")
_CODE = "|".join(sorted(map(re.escape, [*_ISO4217, *_LOCAL]), key=len, reverse=True))
_STRIP = re.compile(rf"[A-Z]{{1,3}}(?=[{re.escape(_SYMBOLS)}])|[{re.escape(_SYMBOLS)}]|^(?:{_CODE})\.?(?=[\s\d(+-])|(?<=[\d\s)-])(?:{_CODE})\.?$")
_WHOLE = re.compile(r"(?<=\d)([.,])-{1,2}$")  # 12.- / 12,-- : a whole amount (Swiss, German), not a negative
_SPACES = re.compile(r"[\s'\u00a0\u202f]")  # grouping by spaces (incl. no-break) and apostrophes
_COMMA_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+$")
_DOT_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+$")


def _sign_and_body(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(negative?, digits-and-marks) after removing currency, grouping spaces and sign notations."""
    t = text.str.replace(_SPACES, " ", regex=True).str.replace(_STRIP, "", regex=True).str.strip()
    t = t.str.replace(_STRIP, "", regex=True).str.replace(_SPACES, "", regex=True)  # "USD $5": code and symbol
    t = t.str.replace(_WHOLE, r"\g<1>00", regex=True)  # its mark is still the decimal one: 1.385,- is 1385
    paren = t.str.startswith("(") & t.str.endswith(")")
    t = t.where(~paren, t.str.slice(1, -1))
    trailing = t.str.endswith("-") & ~t.str.startswith("-")
    t = t.where(~trailing, t.str.slice(0, -1))
    neg = paren | trailing | t.str.startswith("-")
    return neg, t.str.replace(r"^[+-]", "", regex=True)


def _votes(body: pd.Series) -> dict[str, list[int]]:
    """Rows whose text shows a decimal comma (',') or a decimal point ('.')."""
    has_c, has_d = body.str.contains(",", regex=False), body.str.contains(".", regex=False)
    both = body[has_c & has_d]
    last_comma = both.str.rfind(",") > both.str.rfind(".")
    votes = {",": set(both[last_comma].index), ".": set(both[~last_comma].index)}
    only_c = body[has_c & ~has_d]
    votes[","] |= set(only_c[~only_c.str.match(_COMMA_THOUSANDS)].index)  # 12,5 / 12,50: decimal comma
    only_d = body[has_d & ~has_c]
    votes["."] |= set(only_d[~only_d.str.match(_DOT_THOUSANDS)].index)  # 12.5 / 12.50: decimal point
    votes[","] |= set(only_d[only_d.str.count(r"\.") > 1].index)  # 1.234.567: points group, so commas are decimal
    return {k: sorted(v) for k, v in votes.items()}


def read_amounts(values: pd.Series) -> tuple[pd.Series, pd.Series, dict[str, list[int]]]:
    """``(floats, unreadable, votes)`` of a money column, row by row (see the module doc).

    The column's decimal mark is the one most rows show (a point when none does); rows showing
    the other one are unreadable, as are values that are no number. Missing values are NaN and
    not unreadable (the caller decides whether they may be missing). ``votes`` lists the rows
    showing each mark, for error messages. The index is reset.
    """
    values = values.reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        num = values.astype("float64")
        return num, ~np.isfinite(num.fillna(0.0)), {",": [], ".": []}
    text = values.astype("string").str.strip()
    neg, body = _sign_and_body(text.fillna(""))
    votes = _votes(body)
    mark = "," if len(votes[","]) > len(votes["."]) else "."
    group = "." if mark == "," else ","
    plain = body.str.replace(group, "", regex=False).str.replace(mark, ".", regex=False)
    plain = plain.where(~plain.index.isin(votes["." if mark == "," else ","]))  # the other convention
    num = pd.to_numeric(plain.where(plain.str.fullmatch(r"\d+(\.\d*)?|\.\d+")), errors="coerce").astype("float64")
    num = num.where(~neg, -num)
    return num, text.notna() & ~np.isfinite(num.fillna(np.inf)), votes


def parse_amounts(values: pd.Series, origin: str = "<data>", column: str = "amount") -> pd.Series:
    """Floats from a money column (see the module doc); raises ``ValueError`` naming bad rows.

    A column showing both decimal marks is refused whole, naming a row of each. Missing values
    are an error too: an amount nobody recorded is not zero.
    """
    num, _, votes = read_amounts(values)
    if votes[","] and votes["."]:
        text = values.reset_index(drop=True).astype("string")
        a, b = votes[","][0], votes["."][0]
        raise ValueError(f"{origin}: column {column!r} mixes decimal commas and decimal points "
                         f"(data row {a + 1}: {text[a]!r}, data row {b + 1}: {text[b]!r}); use one convention per file")
    bad = ~np.isfinite(num.fillna(np.inf))
    if bad.any():
        text = values.reset_index(drop=True).astype("string")
        rows = np.flatnonzero(bad.to_numpy())
        raise ValueError(f"{origin}: column {column!r} needs amounts; {len(rows)} value(s) are missing or not a "
                         f"number, e.g. {text[rows[0]]!r} at data row {rows[0] + 1}")
    huge = num.abs() >= MONEY_LIMIT  # as the import: beyond it a double skips cents and sums run to inf
    if huge.any():
        text = values.reset_index(drop=True).astype("string")
        rows = np.flatnonzero(huge.to_numpy())
        raise ValueError(f"{origin}: column {column!r} holds {len(rows)} amount(s) too large to hold to the cent "
                         f"(±{MONEY_LIMIT:,.0f} or more), e.g. {text[rows[0]]!r} at data row {rows[0] + 1}")
    return num
