"""Reading and writing tables safely.

Writes go to a temporary file in the target folder and are renamed into place
(``os.replace`` is atomic on one filesystem), so a crash leaves the old table
intact. Reads name the file in every error.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from features.schema import SchemaError, TableSchema, Validated, validate


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` then rename ``tmp`` onto ``path``; remove ``tmp`` on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
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


def open_text(path: Path) -> Any:
    """``path`` opened for reading text: gzip/bz2/xz by suffix, a UTF-8 byte-order mark dropped."""
    import bz2
    import gzip
    import lzma

    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(Path(path).suffix.lower(), open)
    return opener(path, "rt", newline="", encoding="utf-8-sig", errors="replace")


def sniff_delimiter(path: Path, candidates: str = ",;\t|") -> str | None:
    """The delimiter of a text table among ``candidates`` (Excel in many locales writes ``;``); None if empty.

    Python's ``csv.Sniffer`` over the first lines; when it cannot tell, the header line's most
    frequent candidate, else a comma (one column).
    """
    import csv

    with open_text(path) as fh:
        lines = [ln for ln in fh.read(64 * 1024).splitlines() if ln.strip()]
    if not lines:
        return None
    try:
        return csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=candidates).delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in candidates}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def read_frame(path: Path, sep: str | None = None) -> pd.DataFrame:
    """Read a Parquet, CSV or TSV file into a DataFrame of its raw values.

    Raises :class:`SchemaError` naming the file when it is missing or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{path}: no such file")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if sep is None:
            sep = "\t" if path.suffix in (".tsv", ".tab") else (sniff_delimiter(path) or ",")
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
        if not isinstance(df.index, pd.RangeIndex):  # pandas makes an index of the extra first field
            raise SchemaError(f"{path}: data row {_first_long_row(path, sep)} has more fields than the header "
                              f"{list(df.columns)}; a delimiter {sep!r} inside a value (a decimal comma?) needs "
                              "quotes or another delimiter")
        return df
    except SchemaError:
        raise
    except pd.errors.EmptyDataError:
        raise SchemaError(f"{path}: the file is empty (no header, no rows)") from None
    except Exception as exc:  # pyarrow/pandas raise many types; the user needs the file name
        raise SchemaError(f"{path}: cannot be read ({type(exc).__name__}: {str(exc).strip()})") from exc


def _first_long_row(path: Path, sep: str) -> int:
    """The first data row (1-based) with more fields than the header line."""
    import csv

    with open_text(path) as fh:
        rows = csv.reader(fh, delimiter=sep)
        width = len(next(rows, []))
        return next((n for n, row in enumerate(rows, 1) if len(row) > width), 1)


def read_table(path: Path, schema: TableSchema) -> pd.DataFrame:
    """Read a canonical table written by portrait and check it still fits ``schema``."""
    df = read_frame(path)
    missing = [c for c in schema.names if c not in df.columns]
    if missing:
        raise SchemaError(f"{path}: table '{schema.name}' is missing column(s) {missing}")
    return df


def load_validated(
    df: pd.DataFrame, schema: TableSchema, out_dir: Path, rejects_dir: Path, origin: str
) -> Validated:
    """Validate ``df``, then atomically write the accepted rows and the rejects.

    The table lands at ``out_dir/<table>.parquet``; rejects, when any, at
    ``rejects_dir/<table>.csv`` (an old rejects file is removed when there are none).
    Raises before writing anything if a required column is missing.
    """
    result = validate(df, schema, origin)
    write_parquet(result.accepted, Path(out_dir) / f"{schema.name}.parquet")
    rej_path = Path(rejects_dir) / f"{schema.name}.csv"
    if len(result.rejects):
        write_csv(result.rejects, rej_path)
    else:
        rej_path.unlink(missing_ok=True)
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
