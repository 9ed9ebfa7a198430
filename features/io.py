"""Reading and writing tables safely.

Writes go to a temporary file in the target folder and are renamed into place
(``os.replace`` is atomic on one filesystem), so a crash leaves the old table
intact. Reads name the file in every error.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from features.schema import SchemaError, TableSchema, Validated, validate


def _umask() -> int:
    """The process umask: from /proc on Linux, else by setting and restoring it (racy with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish(tmp: Path, path: Path) -> None:
    """Rename the finished temporary file ``tmp`` onto ``path``, with the mode a plain ``open()`` gives.

    mkstemp's 0600 would make tables unreadable to the group (and others) the umask lets read them.
    """
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` then rename ``tmp`` onto ``path``; remove ``tmp`` on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        publish(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_parquet(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` to ``path`` as Parquet, atomically."""
    return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def write_csv(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` to ``path`` as CSV, atomically."""
    return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def _codec(encoding: str) -> str:
    """utf-8 read as utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the first header."""
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def open_text(path: Path, encoding: str = "utf-8", errors: str = "replace") -> Any:
    """``path`` opened for reading text: gzip/bz2/xz by suffix, a UTF-8 byte-order mark dropped."""
    import bz2
    import gzip
    import lzma

    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(Path(path).suffix.lower(), open)
    return opener(path, "rt", newline="", encoding=_codec(encoding), errors=errors)


def sniff_delimiter(path: Path, candidates: str = ",;\t|", encoding: str = "utf-8") -> str | None:
    """The delimiter of a text table among ``candidates`` (Excel in many locales writes ``;``); None if empty.

    Python's ``csv.Sniffer`` over the first lines; when it cannot tell, the header line's most
    frequent candidate, else a comma (one column).
    """
    import csv

    with open_text(path, encoding) as fh:
        lines = [ln for ln in fh.read(64 * 1024).splitlines() if ln.strip()]
    if not lines:
        return None
    try:
        return csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=candidates).delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in candidates}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


_EXCEL_SEP = re.compile(r"^sep=.\s*$")  # Excel's first line naming the delimiter: "sep=;"


def encoding_advice(data: bytes, encoding: str, flag: str = "--encoding") -> str:
    """What to tell a user whose file is not ``encoding`` text: the encoding it does decode in, if a usual one.

    A Chinese Windows / Excel "CSV" is GBK (GB18030 for rare characters): the commonest non-UTF-8 file.
    """
    utf8 = encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig")
    for codec, label in ((("gbk", "GBK"), ("gb18030", "GB18030")) if utf8 else ()) + (("utf-8-sig", "UTF-8"),):
        try:
            data.decode(codec)
        except UnicodeDecodeError:
            continue
        name = codec.removesuffix("-sig")
        return (f"it reads as {label}{' (Chinese Windows / Excel)' if label != 'UTF-8' else ''}: pass {flag} {name}"
                + ("" if label == "UTF-8" else ", or re-save the file as UTF-8 (Excel: 'CSV UTF-8')"))
    return (f"if it is GBK/GB18030 (Chinese Windows / Excel), pass {flag} gb18030 or re-save it as UTF-8; "
            f"Western European files are often {flag} latin-1")


def _decode_offset(path: Path, encoding: str) -> tuple[int, str]:
    """The byte offset of the first byte ``encoding`` cannot decode, and the bytes there (hex).

    Only on the error path, so reading the whole file once more is affordable.
    """
    data = Path(path).read_bytes()
    try:
        data.decode(_codec(encoding))
    except UnicodeDecodeError as exc:
        return exc.start, data[exc.start:exc.start + 2].hex(" ")
    return len(data), ""


def _check_headers(path: Path, names: list[str], origin: str) -> None:
    """A header given twice is an error: pandas would rename the second ``phone`` to ``phone.1`` silently."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names, 1):
        if name in seen and str(name).strip():  # empty trailing headers (a spreadsheet's ",,") are not names
            raise SchemaError(f"{origin}: column header {name!r} appears twice (columns {seen[name]} and {i}); "
                              "rename or remove one")
        seen[name] = i


def read_frame(path: Path, sep: str | None = None, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a Parquet, CSV or TSV file (suffix in any case) into a DataFrame of its raw values.

    CSV values stay text (a phone is never a float). Raises :class:`SchemaError` naming the file when
    it is missing or unreadable, not in ``encoding`` (with the byte offset), or repeats a header.
    """
    import csv

    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{path}: no such file")
    if path.is_dir():
        raise SchemaError(f"{path}: is a folder, not a file")
    suffix = path.suffix.lower()
    _refuse_workbook(path, suffix)
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            _check_headers(path, pq.read_schema(path).names, str(path))
            return pd.read_parquet(path)
        with open_text(path, encoding, errors="strict") as fh:
            first = fh.readline()
            header_at = 1 if _EXCEL_SEP.match(first) else 0
            if header_at:
                sep = sep or first.strip()[4]
                first = fh.readline()
        if sep is None:
            sep = "\t" if suffix in (".tsv", ".tab") else (sniff_delimiter(path, encoding=encoding) or ",")
        _check_headers(path, next(csv.reader([first], delimiter=sep), []), str(path))
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""],
                         encoding=_codec(encoding), skiprows=header_at)
        filled = (~df.isna().all(axis=1)).to_numpy().nonzero()[0]
        # a spreadsheet's trailing ",,," rows are no data rows: not rejects, not in the counts
        df = df.iloc[:filled[-1] + 1 if len(filled) else 0]
        if not isinstance(df.index, pd.RangeIndex):  # pandas makes an index of the extra first field
            raise SchemaError(f"{path}: data row {_first_long_row(path, sep, encoding, header_at)} has more fields than the header "
                              f"{list(df.columns)}; a delimiter {sep!r} inside a value (a decimal comma?) needs "
                              "quotes or another delimiter")
        return df
    except SchemaError:
        raise
    except UnicodeDecodeError:
        at, seen = _decode_offset(path, encoding)
        raise SchemaError(f"{path}: not valid {encoding} text at byte offset {at} (bytes {seen}); "
                          f"{encoding_advice(path.read_bytes(), encoding)}") from None
    except LookupError:
        raise SchemaError(f"{path}: unknown encoding {encoding!r} (e.g. utf-8, gbk, latin-1)") from None
    except pd.errors.EmptyDataError:
        raise SchemaError(f"{path}: the file is empty (no header, no rows)") from None
    except Exception as exc:  # pyarrow/pandas raise many types; the user needs the file name
        text = " ".join(str(exc).split())  # one line: Arrow's messages span many
        raise SchemaError(f"{path}: cannot be read ({type(exc).__name__}: {text[:300]})") from exc


_WORKBOOK_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # zip (xlsx, ods, numbers) and OLE2 (xls) containers
_WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")


def _refuse_workbook(path: Path, suffix: str) -> None:
    """A spreadsheet workbook is a SchemaError saying to save it as CSV.

    Read as text it was "no data rows" (a zip's bytes look like one header line) or "not valid
    utf-8 ... pass --encoding gbk": both send the user the wrong way.
    """
    if suffix in (".parquet", ".gz", ".bz2", ".xz"):
        return
    with open(path, "rb") as fh:
        head = fh.read(4)
    if suffix in _WORKBOOK_SUFFIXES or head in _WORKBOOK_MAGIC:
        raise SchemaError(f"{path}: a spreadsheet workbook, not a CSV/TSV/Parquet table; save the sheet as CSV "
                          "(Excel: File > Save As > CSV UTF-8) and import that file")


def _first_long_row(path: Path, sep: str, encoding: str = "utf-8", skip: int = 0) -> int:
    """The first data row (1-based) with more fields than the header line (after ``skip`` lines)."""
    import csv

    with open_text(path, encoding) as fh:
        for _ in range(skip):
            fh.readline()
        rows = csv.reader(fh, delimiter=sep)
        width = len(next(rows, []))
        return next((n for n, row in enumerate(rows, 1) if len(row) > width), 1)


def read_table(path: Path, schema: TableSchema) -> pd.DataFrame:
    """Read a canonical table written by portrait and check it still fits ``schema``."""
    df = read_frame(path)
    missing = [c.name for c in schema.columns if c.name not in df.columns and c.required]
    if missing:
        raise SchemaError(f"{path}: table '{schema.name}' is missing column(s) {missing}")
    for col in schema.columns:  # an optional column added since the table was written (refund_of, line_no)
        if col.name not in df.columns:
            df[col.name] = pd.Series(pd.NA, index=df.index, dtype="string" if col.kind == "str" else "object")
    return df


def ready_dirs(*folders: Path) -> None:
    """Create ``folders`` (or check they are writable folders) before anything is written.

    Raises :class:`SchemaError` naming the folder, so a rejects path that is a file fails the
    import before the table is replaced, not after.
    """
    for folder in map(Path, folders):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SchemaError(f"{folder}: cannot create the folder ({exc.strerror or exc})") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise SchemaError(f"{folder}: the folder is not writable")


def write_outputs(table: pd.DataFrame, rejects: pd.DataFrame, name: str, out_dir: Path, rejects_dir: Path) -> None:
    """Write ``out_dir/<name>.parquet`` and ``rejects_dir/<name>.csv`` (removed when no rejects), atomically."""
    ready_dirs(out_dir, rejects_dir)
    rej_path = Path(rejects_dir) / f"{name}.csv"
    for path in (Path(out_dir) / f"{name}.parquet", rej_path):
        if path.is_dir():  # found now, not after the table was replaced
            raise SchemaError(f"{path}: is a folder; remove or rename it")
    write_parquet(table, Path(out_dir) / f"{name}.parquet")
    if len(rejects):
        write_csv(rejects, rej_path)
    else:
        rej_path.unlink(missing_ok=True)


def load_validated(
    df: pd.DataFrame, schema: TableSchema, out_dir: Path, rejects_dir: Path, origin: str
) -> Validated:
    """Validate ``df``, then atomically write the accepted rows and the rejects.

    The table lands at ``out_dir/<table>.parquet``; rejects, when any, at
    ``rejects_dir/<table>.csv`` (an old rejects file is removed when there are none).
    Raises before writing anything if a required column is missing or a folder cannot be made.
    """
    result = validate(df, schema, origin)
    write_outputs(result.accepted, result.rejects, schema.name, out_dir, rejects_dir)
    return result


def validate_folder(folder: Path) -> dict[str, Validated]:
    """Validate every canonical table found in ``folder`` (read-only); ``{table: Validated}``.

    Raises :class:`SchemaError` naming the folder when no canonical table is there.
    """
    from features.schema import TABLES

    folder = Path(folder)
    found = [name for name in TABLES if (folder / f"{name}.parquet").exists()]
    if not found:
        raise SchemaError(f"{folder}: no canonical tables found (expected e.g. {sorted(TABLES)[0]}.parquet)")
    return {name: validate(read_frame(folder / f"{name}.parquet"), TABLES[name], str(folder / f"{name}.parquet"))
            for name in found}
