"""`portrait data import|generate` from the audit: merges, atomic failures, files and options, via the real CLI."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from portrait.cli import app

runner = CliRunner()
HEAD = "source,record_id,phone,email,observed_at\n"


@pytest.fixture()
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def run(*args: str):
    return runner.invoke(app, ["data", "import", *map(str, args)])


def one_line_error(res, *words: str) -> None:
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    text = " ".join(res.output.split())
    assert res.output.strip().count("\n") == 0 and "Traceback" not in text, res.output
    for word in words:
        assert word in text, (word, res.output)


def ids(data_dir) -> list[tuple[str, str]]:
    df = pd.read_parquet(data_dir / "raw" / "identity_records.parquet")
    return sorted(zip(df["source"], df["record_id"]))


def test_a_second_source_keeps_the_first_and_a_reimport_replaces_only_its_source(data, tmp_path):
    crm, pos, crm2 = tmp_path / "crm.csv", tmp_path / "pos.csv", tmp_path / "crm2.csv"
    crm.write_text(HEAD + "crm,1,13900000001,,2026-01-01\ncrm,2,13900000002,,2026-01-02\n")
    pos.write_text(HEAD + "pos,9,13900000009,,2026-02-01\n")
    crm2.write_text(HEAD + "crm,3,13900000003,,2026-03-01\n")
    assert run(crm, "-t", "identity_records").exit_code == 0
    res = run(pos, "-t", "identity_records")
    assert res.exit_code == 0, res.output
    assert "kept 2 rows of other sources" in " ".join(res.output.split())
    assert ids(data) == [("crm", "1"), ("crm", "2"), ("pos", "9")]
    res = run(crm2, "-t", "identity_records")
    assert "replaced 2 earlier rows of source crm" in " ".join(res.output.split())
    assert ids(data) == [("crm", "3"), ("pos", "9")]
    assert run(crm, "-t", "identity_records", "--replace").exit_code == 0
    assert ids(data) == [("crm", "1"), ("crm", "2")]


def test_a_table_without_source_is_updated_by_key(data, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("item_id,category,price\nk1,shoes,10\nk2,bags,20\n")
    b.write_text("item_id,category,price\nk2,bags,25\nk3,hats,5\n")
    assert run(a, "-t", "items").exit_code == 0
    res = run(b, "-t", "items")
    assert res.exit_code == 0 and "replaced 1 rows with the same item_id" in " ".join(res.output.split())
    items = pd.read_parquet(data / "raw" / "items.parquet").set_index("item_id")["price"].to_dict()
    assert items == {"k1": 10.0, "k2": 25.0, "k3": 5.0}


def test_monthly_event_exports_append_and_a_reimport_adds_nothing(data, tmp_path):
    head = "source,record_id,event_type,item_id,ts\n"
    jan, feb = tmp_path / "jan.csv", tmp_path / "feb.csv"
    jan.write_text(head + "app,1,view,k1,2026-01-05T10:00:00\napp,1,purchase,k1,2026-01-05T10:05:00\n")
    feb.write_text(head + "app,1,view,k2,2026-02-03T09:00:00\napp,2,view,k2,2026-02-04T09:00:00\n")
    assert run(jan, "-t", "events").exit_code == 0
    res = run(feb, "-t", "events", "--append")
    assert res.exit_code == 0 and "appended 2 rows, skipped 0" in " ".join(res.output.split()), res.output
    again = run(feb, "-t", "events", "--append")
    assert again.exit_code == 0 and "appended 0 rows, skipped 2" in " ".join(again.output.split()), again.output
    events = pd.read_parquet(data / "raw" / "events.parquet")
    assert sorted(events["item_id"]) == ["k1", "k1", "k2", "k2"]
    assert run(feb, "-t", "events").exit_code == 0  # without --append the file is the app source's new whole
    assert sorted(pd.read_parquet(data / "raw" / "events.parquet")["item_id"]) == ["k2", "k2"]
    one_line_error(run(feb, "-t", "events", "--append", "--replace"), "--replace", "--append")


def test_an_appended_key_takes_the_files_row(data, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(HEAD + "crm,1,13900000001,,2026-01-01\ncrm,2,13900000002,,2026-01-02\n")
    b.write_text(HEAD + "crm,2,13900000022,,2026-02-02\ncrm,3,13900000003,,2026-02-03\n")
    assert run(a, "-t", "identity_records").exit_code == 0
    assert run(b, "-t", "identity_records", "--append").exit_code == 0
    df = pd.read_parquet(data / "raw" / "identity_records.parquet").set_index("record_id")["phone"].to_dict()
    assert df == {"1": "13900000001", "2": "13900000022", "3": "13900000003"}


def test_header_only_and_all_rejected_files_change_nothing(data, tmp_path):
    good, empty, bad = tmp_path / "good.csv", tmp_path / "empty.csv", tmp_path / "bad.csv"
    good.write_text(HEAD + "crm,1,13900000001,,2026-01-01\n")
    empty.write_text(HEAD)
    bad.write_text(HEAD + "crm,7,1,,not a date\n")
    assert run(good, "-t", "identity_records").exit_code == 0
    one_line_error(run(empty, "-t", "identity_records"), "empty.csv", "no data rows")
    one_line_error(run(bad, "-t", "identity_records"), "bad.csv", "no row accepted", "data row 1")
    assert ids(data) == [("crm", "1")]


def test_rejects_path_that_is_a_file_fails_before_the_table_is_written(data, tmp_path):
    first, src = tmp_path / "first.csv", tmp_path / "crm.csv"
    first.write_text(HEAD + "crm,0,13900000000,,2026-01-01\n")
    src.write_text(HEAD + "crm,1,13900000001,,2026-01-01\ncrm,2,x,,someday\n")
    assert run(first, "-t", "identity_records").exit_code == 0
    (data / "rejects").rmdir()  # empty: the first import had no rejects
    (data / "rejects").write_text("not a folder")
    one_line_error(run(src, "-t", "identity_records"), "rejects", "cannot create")
    assert ids(data) == [("crm", "0")]


def test_mapping_columns_as_a_list_is_one_line(data, tmp_path):
    src, mapping = tmp_path / "crm.csv", tmp_path / "m.yaml"
    src.write_text(HEAD + "crm,1,13900000001,,2026-01-01\n")
    mapping.write_text("table: identity_records\ncolumns: [a, b]\n")
    one_line_error(run(src, "--mapping", mapping), "m.yaml", "'columns' must be a mapping")
    mapping.write_text("- table\n")
    one_line_error(run(src, "--mapping", mapping), "m.yaml", "key: value")


def test_generate_to_an_unwritable_out_is_one_line(tmp_path):
    res = runner.invoke(app, ["data", "generate", "--people", "10", "--out", "/proc/x"])
    one_line_error(res, "--out /proc/x", "cannot create")


def test_duplicate_csv_header_is_an_error_naming_it(data, tmp_path):
    dup = tmp_path / "dup.csv"
    dup.write_text("source,record_id,phone,phone,observed_at\ncrm,1,139,138,2026-01-01\n")
    one_line_error(run(dup, "-t", "identity_records"), "dup.csv", "'phone' appears twice")


def test_duplicate_parquet_column_is_one_line_naming_it(data, tmp_path):
    cols = [pa.array(["crm"]), pa.array(["1"]), pa.array(["1"]), pa.array(["2026-01-01"])]
    pq.write_table(pa.table(cols, names=["source", "record_id", "source", "observed_at"]), tmp_path / "d.parquet")
    one_line_error(run(tmp_path / "d.parquet", "-t", "identity_records"), "d.parquet", "'source' appears twice")


def test_near_miss_headers_are_read_as_canonical_columns(data, tmp_path):
    near = tmp_path / "near.csv"
    near.write_text("Source,Record ID,Phone,E_MAIL,Observed-At\ncrm,1,13900000001,A@b.com,2026-01-01\n")
    res = run(near, "-t", "identity_records")
    assert res.exit_code == 0, res.output
    assert "read column 'E_MAIL' as email" in " ".join(res.output.split())
    row = pd.read_parquet(data / "raw" / "identity_records.parquet").iloc[0]
    assert (row["record_id"], row["phone"], row["email"]) == ("1", "13900000001", "A@b.com")


def test_ambiguous_near_miss_headers_are_a_warning(data, tmp_path):
    amb = tmp_path / "amb.csv"
    amb.write_text(HEAD.replace("phone,email", "Phone,PHONE") + "crm,1,139,138,2026-01-01\n")
    res = run(amb, "-t", "identity_records")
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "warning" in text and "['Phone', 'PHONE'] look like phone" in text and "--map phone=" in text


def test_dayfirst_and_tz_options(data, tmp_path):
    src = tmp_path / "o.csv"
    src.write_text("order_id,source,record_id,ts,amount\no1,pos,1,03/04/2026 08:00,5\n")
    assert run(src, "-t", "orders").exit_code == 0
    assert pd.read_parquet(data / "raw" / "orders.parquet")["ts"][0] == pd.Timestamp("2026-03-04 08:00", tz="UTC")
    assert run(src, "-t", "orders", "--dayfirst", "--tz", "Asia/Shanghai").exit_code == 0
    assert pd.read_parquet(data / "raw" / "orders.parquet")["ts"][0] == pd.Timestamp("2026-04-03 00:00", tz="UTC")
    one_line_error(run(src, "-t", "orders", "--tz", "Mars/Olympus"), "Mars/Olympus")


def test_dayfirst_and_tz_in_the_mapping(data, tmp_path):
    src, mapping = tmp_path / "o.csv", tmp_path / "m.yaml"
    src.write_text("order_id,source,record_id,ts,amount\no1,pos,1,03/04/2026 08:00,5\n")
    mapping.write_text("table: orders\ndayfirst: true\ntz: Europe/Paris\n")
    assert run(src, "--mapping", mapping).exit_code == 0
    assert pd.read_parquet(data / "raw" / "orders.parquet")["ts"][0] == pd.Timestamp("2026-04-03 06:00", tz="UTC")


def test_a_gbk_file_names_the_offset_and_reads_with_encoding(data, tmp_path):
    gbk = tmp_path / "crm.csv"
    gbk.write_bytes((HEAD + "crm,1,13900000001,张三@例子.cn,2026-01-01\n").encode("gbk"))
    one_line_error(run(gbk, "-t", "identity_records"), "crm.csv", f"byte offset {len(HEAD) + 18}",
                   "--encoding gbk")
    assert run(gbk, "-t", "identity_records", "--encoding", "gbk").exit_code == 0
    assert pd.read_parquet(data / "raw" / "identity_records.parquet")["email"][0] == "张三@例子.cn"


def test_upper_case_suffixes(data, tmp_path):
    bom = tmp_path / "BOM.CSV"
    bom.write_bytes(("\ufeff" + HEAD.replace(",", ";") + "crm;2;13900000002;;2026-01-01\n").encode("utf-8"))
    assert run(bom, "-t", "identity_records").exit_code == 0
    assert ids(data) == [("crm", "2")]
    up = tmp_path / "UP.PARQUET"
    pd.DataFrame({"source": ["crm"], "record_id": ["4"], "observed_at": ["2026-01-01"]}).to_parquet(up)
    assert run(up, "-t", "identity_records").exit_code == 0
    assert ids(data) == [("crm", "4")]


def test_excel_sep_line_is_honoured(data, tmp_path):
    excel = tmp_path / "excel.csv"
    excel.write_text("sep=;\n" + HEAD.replace(",", ";") + "crm;3;13900000003;;2026-01-01\n")
    res = run(excel, "-t", "identity_records")
    assert res.exit_code == 0, res.output
    assert ids(data) == [("crm", "3")]


def test_parquet_float_ids_become_integer_text(data, tmp_path):
    src = tmp_path / "f.parquet"
    pd.DataFrame({"source": ["crm", "crm"], "record_id": [101.0, 102.0], "phone": [13912345678.0, None],
                  "observed_at": ["2026-01-01"] * 2}).to_parquet(src)
    assert run(src, "-t", "identity_records").exit_code == 0
    df = pd.read_parquet(data / "raw" / "identity_records.parquet")
    assert df["record_id"].tolist() == ["101", "102"] and df["phone"][0] == "13912345678"


EVENTS_CSV = "source,record_id,event_type,item_id,ts\napp,1,view,i1,2026-01-01\napp,2,teleport,i2,2026-01-01\n"


def test_rejects_name_the_one_based_data_row(data, tmp_path):
    (tmp_path / "e.csv").write_text(EVENTS_CSV)
    assert run(tmp_path / "e.csv", "-t", "events").exit_code == 0
    assert pd.read_csv(data / "rejects" / "events.csv")["_data_row"].tolist() == [2]  # 2nd row under the header


def test_written_files_have_the_umask_default_mode(data, tmp_path):
    (tmp_path / "e.csv").write_text(EVENTS_CSV)
    assert run(tmp_path / "e.csv", "-t", "events").exit_code == 0
    umask = os.umask(0o022)
    os.umask(umask)
    for path in (data / "raw" / "events.parquet", data / "rejects" / "events.csv"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


def test_enumerated_values_ignore_case(data, tmp_path):
    (tmp_path / "e.csv").write_text(EVENTS_CSV.replace(",view,", ",View,"))
    assert run(tmp_path / "e.csv", "-t", "events").exit_code == 0
    assert pd.read_parquet(data / "raw" / "events.parquet")["event_type"].tolist() == ["view"]
