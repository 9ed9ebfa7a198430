"""Tokenizer and recursive-descent parser of the audience rule language.

:func:`parse` turns a rule's text into a tree of small frozen dataclasses (:class:`Col`,
:class:`Lit`, :class:`Cmp`, :class:`In`, :class:`IsNull`, :class:`BoolOp`,
:class:`Not`) without ``eval``; every syntax error is a :class:`RuleError` naming the bad
token and its position. The grammar, the checks against a table's columns and the
vectorized evaluation live in :mod:`features.audience_rules`, which re-exports all of
this; import from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

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
