"""A bad regular expression in a rules file is a one-line error naming the file, the rule and the regex error."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.identity.config import RulesError, load_rules


@pytest.mark.parametrize(("yaml", "where", "why"), [
    ('blocked:\n  phone:\n    patterns: ["^(1{11}$"]\n', "blocked.phone.patterns", "missing )"),
    ('phone:\n  valid: "(?=1)[0-9]+"\n', "phone.valid", "invalid perl operator"),  # Python accepts it, RE2 not
    ('email:\n  valid: "[a-z"\n', "email.valid", "missing ]"),
])
def test_bad_regex_names_file_rule_and_error(tmp_path, yaml, where, why):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml)
    with pytest.raises(RulesError) as err:
        load_rules(path)
    assert str(path) in str(err.value) and where in str(err.value) and why in str(err.value)


def test_cli_bad_regex_is_one_line_and_writes_nothing(tmp_path, monkeypatch, records):
    from portrait.cli import app

    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    pq.write_table(records([{"source": "crm", "record_id": "c1", "phone": "13912345678"}]), raw / "identity_records.parquet")
    (tmp_path / "rules.yaml").write_text('blocked:\n  email:\n    patterns: ["(unclosed"]\n')
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PORTRAIT_HMAC_KEY", "rules-test-key-0123456789")
    r = CliRunner().invoke(app, ["identity", "resolve", "--rules", str(tmp_path / "rules.yaml")])
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "blocked.email.patterns" in errors[0] and "(unclosed" in errors[0], r.output
    assert not (tmp_path / "data" / "identity").exists()
