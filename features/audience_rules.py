"""A small, safe rule language for audiences, evaluated vectorized over a features table.

Rules select customers by tags and features::

    age < 30 and gender == "F" and active_days_30d >= 10
    city in ("Shanghai", "Beijing") and not churned
    18 <= age < 30 or ltv_90d between 100 and 500
    affinity_skincare >= 0.3 and purchases_90d == 0 and coupon_user is not null

Grammar (``not`` binds tighter than ``and``, which binds tighter than ``or``)::

    rule    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | pred
    pred    := "(" rule ")"
             | value (cmpop value)+                  # chained: 18 <= age < 30
             | value ["not"] "in" "(" literal ("," literal)* ")"   # or [ ... ]
             | value ["not"] "between" literal "and" literal        # inclusive
             | value "is" ["not"] "null"
             | name                                   # a boolean tag
    value   := name | literal
    literal := number | "string" | 'string' | true | false

The text is tokenized and parsed by :mod:`features.audience_rules_parse` (never
``eval``); names can only refer to columns of the table, so ``__import__("os")``,
attribute access (``a.b``), calls, indexing and arithmetic are all syntax errors. Errors are :class:`RuleError` and
name the bad token with its position, or the unknown tag with close matches.
Evaluation is numpy/pandas vectorized; missing values never match a comparison.
"""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np
import pandas as pd

# the grammar's tokens, tree nodes and parser; re-exported: callers import them from here
from features.audience_rules_parse import (
    CMP_OPS,
    KEYWORDS,
    MAX_RULE_CHARS,
    BoolOp,
    Cmp,
    Col,
    In,
    IsNull,
    Lit,
    Not,
    RuleError,
    Token,
    parse,
    tokenize,
)

__all__ = ["CMP_OPS", "KEYWORDS", "MAX_RULE_CHARS", "BoolOp", "Cmp", "Col", "In", "IsNull", "Lit", "Not",
           "RuleError", "Token", "columns_of", "evaluate", "parse", "tokenize", "unknown_values", "validate"]


def columns_of(node: Any) -> set[str]:
    """Names of the columns a parsed rule refers to."""
    if isinstance(node, Col):
        return {node.name}
    if isinstance(node, Cmp):
        return columns_of(node.left) | columns_of(node.right)
    if isinstance(node, (In, IsNull)):
        return columns_of(node.operand)
    if isinstance(node, BoolOp):
        return set().union(*(columns_of(a) for a in node.args))
    if isinstance(node, Not):
        return columns_of(node.arg)
    return set()


def validate(rule: str, columns: Any) -> Any:
    """Parse ``rule`` and check every name is one of ``columns``; returns the tree."""
    tree = parse(rule)
    known = list(columns)
    for name in sorted(columns_of(tree)):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise RuleError(f"unknown tag or feature {name!r}{hint}")
    return tree


def _string_tests(node: Any) -> list[tuple[str, str]]:
    """(column, string literal) pairs a rule tests for equality/membership (``city == "x"``, ``in (...)``)."""
    if isinstance(node, Cmp) and node.op in ("==", "!="):
        pairs = [(node.left, node.right), (node.right, node.left)]
        return [(c.name, v.value) for c, v in pairs if isinstance(c, Col) and isinstance(v, Lit)
                and isinstance(v.value, str)] + _string_tests(node.left) + _string_tests(node.right)
    if isinstance(node, In) and isinstance(node.operand, Col):
        return [(node.operand.name, v) for v in node.values if isinstance(v, str)]
    if isinstance(node, BoolOp):
        return [p for a in node.args for p in _string_tests(a)]
    if isinstance(node, Not):
        return _string_tests(node.arg)
    return []


def unknown_values(rule: str | Any, frame: pd.DataFrame, limit: int = 5) -> list[str]:
    """One message per string value the rule tests that no row holds (a typo, or a city not in the data).

    Such a rule is valid but matches nobody (or everybody, with ``!=``) silently; callers warn with
    these messages, which list close matches among the column's values (``"Atlantis"`` -> none,
    ``"shanghai"`` -> ``Shanghai``).
    """
    tree = validate(rule, frame.columns) if isinstance(rule, str) else rule
    out = []
    for name, value in dict.fromkeys(_string_tests(tree)):
        col = frame[name] if name in frame.columns else None
        if col is None or _kind(col) != "str":
            continue
        present = [str(v) for v in pd.unique(col.dropna())]
        if value in present:
            continue
        lower = {p.lower(): p for p in present}
        near = ([lower[value.lower()]] if value.lower() in lower else []) or \
            difflib.get_close_matches(value, present, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(v) for v in near)}?" if near else \
            (f"; values: {', '.join(repr(v) for v in sorted(present)[:8])}" + (", ..." if len(present) > 8 else "")
             if len(present) <= 50 else "")
        out.append(f"no customer has {name} == {value!r}{hint}")
        if len(out) >= limit:
            break
    return out


def evaluate(rule: str | Any, frame: pd.DataFrame) -> np.ndarray:
    """Boolean mask (numpy, one entry per row of ``frame``) of the rows matching ``rule``."""
    tree = validate(rule, frame.columns) if isinstance(rule, str) else rule
    if isinstance(tree, Col):
        return _as_bool_tag(tree.name, frame)
    return np.asarray(_eval(tree, frame), dtype=bool)


def _as_bool_tag(name: str, frame: pd.DataFrame) -> np.ndarray:
    col = frame[name]
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.fillna(False).to_numpy(dtype=bool)
    if pd.api.types.is_integer_dtype(col.dtype) and set(pd.unique(col.dropna())) <= {0, 1}:
        return col.fillna(0).to_numpy() == 1
    raise RuleError(f"{name!r} is not a boolean tag ({col.dtype}); compare it, e.g. {name} > 0 or {name} == \"x\"")


def _operand(node: Any, frame: pd.DataFrame) -> Any:
    if isinstance(node, Col):
        return frame[node.name]
    return node.value


def _kind(value: Any) -> str:
    """'num', 'str', 'bool' or 'time' for a column or literal."""
    if isinstance(value, pd.Series):
        dtype = value.dtype
        if pd.api.types.is_bool_dtype(dtype):
            return "bool"
        if pd.api.types.is_numeric_dtype(dtype):
            return "num"
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return "time"
        return "str"
    if isinstance(value, bool):
        return "bool"
    return "num" if isinstance(value, (int, float)) else "str"


def _name(node: Any) -> str:
    return node.name if isinstance(node, Col) else repr(node.value)


def _compare(op: str, left: Any, right: Any) -> Any:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right


def _eval(node: Any, frame: pd.DataFrame) -> Any:
    n = len(frame)
    if isinstance(node, Col):
        return _as_bool_tag(node.name, frame)
    if isinstance(node, Lit):
        raise RuleError(f"a bare value {node.value!r} is not a condition")
    if isinstance(node, BoolOp):
        out = np.asarray(_eval(node.args[0], frame), dtype=bool).copy()
        for arg in node.args[1:]:
            mask = np.asarray(_eval(arg, frame), dtype=bool)
            out = (out & mask) if node.op == "and" else (out | mask)
        return out
    if isinstance(node, Not):
        return ~np.asarray(_eval(node.arg, frame), dtype=bool)
    if isinstance(node, IsNull):
        val = _operand(node.operand, frame)
        mask = val.isna().to_numpy() if isinstance(val, pd.Series) else np.full(n, val is None)
        return ~mask if node.negate else mask
    if isinstance(node, In):
        val = _operand(node.operand, frame)
        if not isinstance(val, pd.Series):
            raise RuleError(f"the left side of 'in' must be a tag or feature, got {val!r}")
        kinds = {_kind(v) for v in node.values}
        want = _kind(val)
        if want == "bool" and kinds <= {"bool", "num"} or want in kinds and len(kinds) == 1:
            mask = val.isin(list(node.values)).to_numpy()
        else:
            raise RuleError(f"{node.operand.name!r} holds {want} values; the list after 'in' has {', '.join(sorted(kinds))}")
        return ~mask & val.notna().to_numpy() if node.negate else mask
    if isinstance(node, Cmp):
        left, right = _operand(node.left, frame), _operand(node.right, frame)
        lk, rk = _kind(left), _kind(right)
        if lk == "time" and rk == "str":
            right = pd.Timestamp(right, tz=getattr(left.dtype, "tz", None))
            rk = "time"
        elif rk == "time" and lk == "str":
            left = pd.Timestamp(left, tz=getattr(right.dtype, "tz", None))
            lk = "time"
        if {lk, rk} == {"bool", "num"} and node.op in ("==", "!="):
            lk = rk = "num"
        if lk != rk:
            raise RuleError(f"cannot compare {_name(node.left)} ({lk}) with {_name(node.right)} ({rk}) using {node.op!r}")
        if lk == "bool" and node.op not in ("==", "!="):
            raise RuleError(f"{node.op!r} needs numbers, dates or strings; {_name(node.left)} is boolean")
        if not isinstance(left, pd.Series) and not isinstance(right, pd.Series):
            return np.full(n, bool(_compare(node.op, left, right)))
        result = _compare(node.op, left, right)
        result = result.to_numpy() if hasattr(result, "to_numpy") else np.asarray(result)
        # missing values never match (pandas' != says True for NaN; undo it)
        for side in (left, right):
            if isinstance(side, pd.Series) and side.hasnans:
                result = result & side.notna().to_numpy()
        return np.asarray(result, dtype=bool)
    raise RuleError(f"cannot evaluate {node!r}")  # unreachable with parser output
