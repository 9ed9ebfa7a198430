"""OneID configuration: the linking rules (from a commented YAML file) and the run options.

:func:`load_rules` reads ``rules.yaml`` shipped beside this module (or a user file with
the same keys; missing keys keep the shipped defaults) into a frozen :class:`Rules`.
:class:`ResolveConfig` is what the CLI builds and passes to :func:`features.identity.resolve.resolve`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from features.schema import IDENTIFIER_TYPES

DEFAULT_RULES = Path(__file__).with_name("rules.yaml")


class RulesError(ValueError):
    """The rules file is malformed (names the file and the key)."""


@dataclass(frozen=True)
class Rules:
    priority: tuple[str, ...]  # identifier types, highest priority first
    limits: dict[str, int]  # most distinct values of a type one person may hold
    source_priority: tuple[str, ...]  # golden-record survivorship order of sources
    phone_country_code: str = "86"  # stripped from +86 / 0086 / 86 prefixes
    phone_valid: str = r"^1[3-9][0-9]{9}$"  # RE2, on the digits-only phone
    email_valid: str = r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"  # RE2, on the trimmed lowercase email
    blocked_any: tuple[str, ...] = ()  # placeholder values of every type (case-insensitive)
    blocked_values: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per type, exact
    blocked_patterns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per type, RE2
    city_aliases: dict[str, str] = field(default_factory=dict)  # golden-record city spellings -> one name

    def limit(self, id_type: str) -> int:
        return int(self.limits.get(id_type, 1))

    def fingerprint(self) -> str:
        """Short hash of the rules, stored with the identity state (a changed rule set is logged)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def _load_yaml(path: Path) -> dict:
    import yaml

    try:
        # UTF-8 whatever the locale: under LANG=C (containers, cron) a rule with 无 / 未知 was a traceback
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8-sig")) or {}
    except FileNotFoundError as exc:
        raise RulesError(f"{path}: no such rules file") from exc
    except UnicodeDecodeError as exc:
        raise RulesError(f"{path}: not UTF-8 text at byte offset {exc.start}; save the rules file as UTF-8") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise RulesError(f"{path}: expected a mapping at the top level")
    return data


def _check_regex(origin: Path, where: str, pattern: str | None) -> None:
    """A :class:`RulesError` naming the file, the rule and the regex error, before any record is read.

    Patterns run in Arrow (RE2), so RE2 compiles them here: a pattern Python accepts but RE2 does
    not (a look-ahead) is refused too.
    """
    if pattern is None:
        return
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        pc.match_substring_regex(pa.array([""], pa.string()), str(pattern))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        msg = str(exc).replace("Invalid regular expression: ", "").strip()
        raise RulesError(f"{origin}: {where}: bad regular expression {str(pattern)!r} ({msg})") from exc


def load_rules(path: Path | str | None = None) -> Rules:
    """Read the shipped defaults, overlaid with ``path`` when given; validate types and limits."""
    data = _load_yaml(DEFAULT_RULES)
    origin = DEFAULT_RULES
    if path is not None:
        origin = Path(path)
        user = _load_yaml(origin)
        unknown = set(user) - set(data)
        if unknown:
            raise RulesError(f"{origin}: unknown key(s) {sorted(unknown)}; known: {sorted(data)}")
        for key, value in user.items():
            data[key] = {**data[key], **value} if isinstance(data[key], dict) and isinstance(value, dict) else value
    priority = tuple(data.get("priority") or ())
    bad = [t for t in priority if t not in IDENTIFIER_TYPES]
    if bad or len(set(priority)) != len(priority) or not priority:
        raise RulesError(f"{origin}: priority: unknown or repeated identifier type(s) {bad or priority}; "
                         f"known: {list(IDENTIFIER_TYPES)}")
    limits = {str(k): v for k, v in (data.get("limits") or {}).items()}
    for t, v in limits.items():
        if t not in IDENTIFIER_TYPES:
            raise RulesError(f"{origin}: limits.{t}: unknown identifier type")
        if not isinstance(v, int) or v < 1:
            raise RulesError(f"{origin}: limits.{t}: must be a positive integer (got {v!r})")
    blocked = data.get("blocked") or {}
    values, patterns = {}, {}
    for t, spec in blocked.items():
        if t == "any":
            continue
        if t not in IDENTIFIER_TYPES or not isinstance(spec, dict):
            raise RulesError(f"{origin}: blocked.{t}: expected an identifier type with values/patterns")
        values[t] = tuple(str(v) for v in spec.get("values") or ())
        patterns[t] = tuple(str(v) for v in spec.get("patterns") or ())
    phone, email = data.get("phone") or {}, data.get("email") or {}
    _check_regex(origin, "phone.valid", phone.get("valid"))
    _check_regex(origin, "email.valid", email.get("valid"))
    for t, pats in patterns.items():
        for pat in pats:
            _check_regex(origin, f"blocked.{t}.patterns", pat)
    city = data.get("city") or {}
    aliases = city.get("aliases") if isinstance(city, dict) else None
    if not isinstance(city, dict) or not isinstance(aliases or {}, dict) \
            or not all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in (aliases or {}).items()):
        raise RulesError(f"{origin}: city.aliases: expected a mapping of city names, e.g. {{Shanghai: 上海}}")
    return Rules(
        priority=priority,
        limits={t: int(limits.get(t, 1)) for t in priority},
        source_priority=tuple(str(s) for s in data.get("source_priority") or ()),
        phone_country_code=str(phone.get("country_code", "86")),
        phone_valid=str(phone.get("valid", Rules.phone_valid)),
        email_valid=str(email.get("valid", Rules.email_valid)),
        blocked_any=tuple(str(v).strip().lower() for v in blocked.get("any") or ()),
        blocked_values=values,
        blocked_patterns=patterns,
        city_aliases=dict(aliases or {}),
    )


@dataclass(frozen=True)
class ResolveConfig:
    identity_dir: Path  # where record_map, golden, identifiers, aliases, changelog/ and state/ live
    raw_dir: Path  # canonical input tables (identity_records.parquet, profiles.parquet)
    hmac_key: str | None = None  # PORTRAIT_HMAC_KEY; None is an error unless demo_key
    demo_key: bool = False  # use the public demo key when hmac_key is None (demo data only)
    rules_path: Path | None = None  # None = the shipped rules.yaml
    incremental: bool = False  # only records not seen before; untouched persons are not recomputed
