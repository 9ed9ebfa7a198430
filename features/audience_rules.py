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

The text is tokenized and parsed here (never ``eval``); names can only refer to
columns of the table, so ``__import__("os")``, attribute access (``a.b``), calls,
indexing and arithmetic are all syntax errors. Errors are :class:`RuleError` and
name the bad token with its position, or the unknown tag with close matches.
Evaluation is numpy/pandas vectorized; missing values never match a comparison.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

CMP_OPS = ("==", "!=", "<=", ">=", "<", ">")
KEYWORDS = {"and", "or", "not", "in", "between", "is", "null", "true", "false"}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)(?![A-Za-z_\.])
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<name>[A-Za-z_\u4e00-\u9fff][A-Za-z0-9_\u4e00-\u9fff]*)
      | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
    )""",
    re.X,
)
MAX_RULE_CHARS = 10_000  # long enough for any hand-written rule; bounds parser work


class RuleError(ValueError):
    """A rule that cannot be parsed or evaluated; the message names the culprit."""


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, name, keyword, op, end
    text: str
    pos: int  # character offset in the rule (0-based)
    value: Any = None


@dataclass(frozen=True)
class Col:
    name: str


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class Cmp:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class In:
    operand: Any
    values: tuple
    negate: bool


@dataclass(frozen=True)
class IsNull:
    operand: Any
    negate: bool


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" / "or"
    args: tuple


@dataclass(frozen=True)
class Not:
    arg: Any


def tokenize(text: str) -> list[Token]:
    """Split a rule into tokens; any other character is an error naming it and its position."""
    if not isinstance(text, str):
        raise RuleError(f"a rule must be a string, got {type(text).__name__}")
    if len(text) > MAX_RULE_CHARS:
        raise RuleError(f"rule too long ({len(text)} characters, at most {MAX_RULE_CHARS})")
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            start = pos + (len(text[pos:]) - len(text[pos:].lstrip()))
            bad = text[start]
            hint = " (attribute access is not allowed)" if bad == "." else ""
            raise RuleError(f"bad token {bad!r} at position {start}{hint}: {_excerpt(text, start)}")
        kind = m.lastgroup
        raw = m.group(kind)
        start = m.start(kind)
        if kind == "number":
            value = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(Token("number", raw, start, value))
        elif kind == "string":
            value = re.sub(r"\\(.)", r"\1", raw[1:-1])
            tokens.append(Token("string", raw, start, value))
        elif kind == "name" and raw.lower() in KEYWORDS:
            tokens.append(Token("keyword", raw.lower(), start))
        else:
            tokens.append(Token(kind, raw, start, raw))
        pos = m.end()
    tokens.append(Token("end", "end of rule", len(text)))
    return tokens


def _excerpt(text: str, pos: int) -> str:
    return f"{text[max(0, pos - 20):pos]}⟨{text[pos:pos + 1]}⟩{text[pos + 1:pos + 20]}"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, tok: Token, expected: str) -> RuleError:
        return RuleError(f"unexpected {tok.text!r} at position {tok.pos}, expected {expected}: "
                         f"{_excerpt(self.text, tok.pos)}")

    def expect(self, kind: str, text: str | None, expected: str) -> Token:
        tok = self.take()
        if tok.kind != kind or (text is not None and tok.text != text):
            raise self.error(tok, expected)
        return tok

    def is_kw(self, word: str, offset: int = 0) -> bool:
        tok = self.tokens[min(self.i + offset, len(self.tokens) - 1)]
        return tok.kind == "keyword" and tok.text == word

    def parse(self) -> Any:
        if self.peek().kind == "end":
            raise RuleError("empty rule")
        node = self.or_()
        if self.peek().kind != "end":
            raise self.error(self.peek(), "'and', 'or' or the end of the rule")
        return node

    def or_(self) -> Any:
        args = [self.and_()]
        while self.is_kw("or"):
            self.take()
            args.append(self.and_())
        return args[0] if len(args) == 1 else BoolOp("or", tuple(args))

    def and_(self) -> Any:
        args = [self.not_()]
        while self.is_kw("and"):
            self.take()
            args.append(self.not_())
        return args[0] if len(args) == 1 else BoolOp("and", tuple(args))

    def not_(self) -> Any:
        if self.is_kw("not"):
            self.take()
            return Not(self.not_())
        return self.pred()

    def literal(self) -> Lit:
        tok = self.take()
        if tok.kind in ("number", "string"):
            return Lit(tok.value)
        if tok.kind == "keyword" and tok.text in ("true", "false"):
            return Lit(tok.text == "true")
        raise self.error(tok, "a number, a quoted string, true or false")

    def value(self) -> Any:
        tok = self.peek()
        if tok.kind == "name":
            self.take()
            return Col(tok.text)
        if tok.kind in ("number", "string") or (tok.kind == "keyword" and tok.text in ("true", "false")):
            return self.literal()
        raise self.error(tok, "a tag or feature name, a value, 'not' or '('")

    def pred(self) -> Any:
        tok = self.peek()
        if tok.kind == "op" and tok.text == "(":
            self.take()
            node = self.or_()
            self.expect("op", ")", "')'")
            return node
        left = self.value()
        nxt = self.peek()
        if nxt.kind == "op" and nxt.text in CMP_OPS:
            parts = []
            while self.peek().kind == "op" and self.peek().text in CMP_OPS:
                op = self.take().text
                right = self.value()
                parts.append(Cmp(op, left, right))
                left = right
            return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))
        negate = False
        if self.is_kw("not") and (self.is_kw("in", 1) or self.is_kw("between", 1)):
            self.take()
            negate = True
        if self.is_kw("in"):
            self.take()
            opener = self.take()
            if opener.kind != "op" or opener.text not in "([":
                raise self.error(opener, "'(' or '[' opening a list of values")
            closer = ")" if opener.text == "(" else "]"
            values = [self.literal().value]
            while self.peek().kind == "op" and self.peek().text == ",":
                self.take()
                values.append(self.literal().value)
            self.expect("op", closer, f"',' or {closer!r}")
            return In(left, tuple(values), negate)
        if self.is_kw("between"):
            self.take()
            low = self.literal()
            self.expect("keyword", "and", "'and' in 'between LOW and HIGH'")
            high = self.literal()
            node = BoolOp("and", (Cmp(">=", left, low), Cmp("<=", left, high)))
            if not negate:
                return node
            return BoolOp("and", (Not(node), IsNull(left, True))) if isinstance(left, Col) else Not(node)
        if self.is_kw("is"):
            self.take()
            neg = False
            if self.is_kw("not"):
                self.take()
                neg = True
            self.expect("keyword", "null", "'null' after 'is'")
            return IsNull(left, neg)
        if isinstance(left, Col):
            return left  # a bare boolean tag
        raise self.error(nxt, "a comparison (==, !=, <, <=, >, >=), 'in', 'between' or 'is null'")


def parse(rule: str) -> Any:
    """Parse ``rule`` into a tree of small frozen dataclasses (raises :class:`RuleError`)."""
    return _Parser(rule).parse()


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
