"""The audience rule language: parsing, vectorized evaluation, errors, and injection attempts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.audience_rules import RuleError, evaluate, parse, tokenize


@pytest.fixture()
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "age": [25.0, 35.0, np.nan, 18.0, 29.0],
        "gender": ["F", "M", "F", None, "F"],
        "active_days_30d": [12, 3, 20, 10, 10],
        "affinity_skincare": [0.5, 0.1, 0.9, 0.3, 0.29],
        "purchases_90d": [0, 1, 0, 0, 0],
        "vip": [True, False, True, False, False],
        "city": pd.Categorical(["Shanghai", "Beijing", "Shenzhen", "Shanghai", "Beijing"]),
        "last_seen": pd.to_datetime(["2026-06-01", "2026-01-01", "2026-06-20", "2025-12-01", "2026-03-01"], utc=True),
    })


def rows(rule: str, frame: pd.DataFrame) -> list[int]:
    return np.flatnonzero(evaluate(rule, frame)).tolist()


def test_the_issue_example(frame):
    rule = 'age < 30 and gender == "F" and active_days_30d >= 10 and affinity_skincare >= 0.3 and purchases_90d == 0'
    assert rows(rule, frame) == [0]


@pytest.mark.parametrize("rule, expected", [
    ("vip", [0, 2]),
    ("not vip", [1, 3, 4]),
    ("vip or age < 20", [0, 2, 3]),
    ("not (vip or age < 20)", [1, 4]),
    ("vip and not age > 30 or purchases_90d == 1", [0, 1, 2]),  # not > and > or; not negates the mask
    ('city in ("Shanghai", "Shenzhen")', [0, 2, 3]),
    ("city not in ['Shanghai']", [1, 2, 4]),
    ("18 <= age < 29", [0, 3]),
    ("age between 25 and 29", [0, 4]),
    ("age not between 20 and 30", [1, 3]),
    ("age is null", [2]),
    ("gender is not null and age is not null", [0, 1, 4]),
    ('gender != "F"', [1]),  # missing gender matches neither == nor !=
    ("affinity_skincare > 0.29", [0, 2, 3]),
    ("active_days_30d >= purchases_90d", [0, 1, 2, 3, 4]),  # column vs column
    ("vip == true", [0, 2]),
    ('last_seen >= "2026-05-01"', [0, 2]),
    ("age < 0", []),
    ("30 > age", [0, 3, 4]),
    ("1e1 < active_days_30d", [0, 2]),
])
def test_rules(frame, rule, expected):
    assert rows(rule, frame) == expected


def test_keywords_are_case_insensitive(frame):
    assert rows("vip AND NOT age > 30 OR purchases_90d == 1", frame) == [0, 1, 2]


@pytest.mark.parametrize("rule, fragment", [
    ('__import__("os")', "unexpected '('"),
    ('__import__("os").system("ls")', "attribute access"),
    ("age.__class__", "attribute access"),
    ("os.system('ls')", "attribute access"),
    ("age > 3; rm -rf /", "bad token ';'"),
    ("lambda: 1", "bad token ':'"),
    ("age[0] > 1", "unexpected '['"),
    ("age + 1 > 3", "bad token '+'"),
    ("open('x') == 1", "unexpected '('"),
    ("`ls`", "bad token '`'"),
    ("age > 1 {}", "bad token '{'"),
    ("exec == 1", "unknown tag or feature 'exec'"),
    ("__builtins__", "unknown tag or feature '__builtins__'"),
])
def test_injection_attempts_are_syntax_or_name_errors(frame, rule, fragment):
    with pytest.raises(RuleError, match=None) as info:
        evaluate(rule, frame)
    assert fragment in str(info.value)


@pytest.mark.parametrize("rule, fragment", [
    ("agee < 30", "unknown tag or feature 'agee'; did you mean age"),
    ("age <", "expected a tag or feature name"),
    ("(age > 3", "expected ')'"),
    ("age > 3)", "unexpected ')' at position 7"),
    ("vip and", "position 7"),
    ("", "empty rule"),
    ("age", "not a boolean tag"),
    ('age > "x"', "cannot compare age (num) with 'x' (str)"),
    ("gender in (1, 2)", "'gender' holds str values"),
    ("age in 1", "'(' or '['"),
    ("vip > true", "boolean"),
    ('"unterminated', "bad token '\"'"),
    ("age between 1 or 2", "'and' in 'between LOW and HIGH'"),
    ("age is 3", "'null' after 'is'"),
    ("1 < 2", None),
])
def test_errors_name_the_culprit(frame, rule, fragment):
    if fragment is None:  # literal-only comparison is allowed: constant mask
        assert evaluate(rule, frame).all()
        return
    with pytest.raises(RuleError) as info:
        evaluate(rule, frame)
    assert fragment in str(info.value), str(info.value)


def test_tokenizer_positions_and_unicode_names():
    toks = tokenize('年龄 >= 18 and city == "上海"')
    assert [t.kind for t in toks] == ["name", "op", "number", "keyword", "name", "op", "string", "end"]
    assert toks[1].pos == 3 and toks[6].value == "上海"


def test_long_rules_are_refused():
    with pytest.raises(RuleError, match="too long"):
        parse("vip or " * 5000 + "vip")


def test_vectorized_result_is_a_numpy_mask(frame):
    mask = evaluate("vip", frame)
    assert isinstance(mask, np.ndarray) and mask.dtype == bool and mask.shape == (len(frame),)
