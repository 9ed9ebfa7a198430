"""MovieLens 100K as portrait data: ratings become implicit interactions.

Reads the GroupLens files (``u.data``, ``u.user``, ``u.item``) from a folder,
by default ``../shared/data/movielens-100k``. :func:`load_interactions` gives the
plain (user, item, weight, timestamp) frame the evaluation commands use;
:func:`load_tables` gives canonical tables (identity records, profiles, events,
items) under source ``movielens``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.schema import SchemaError

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
DATA_YEAR = 1998  # ratings were collected 1997-1998; ages are turned into birth years against it


def _need(folder: Path, name: str) -> Path:
    path = Path(folder) / name
    if not path.exists():
        raise SchemaError(f"{path}: MovieLens file missing (expected the ml-100k folder)")
    return path


def load_interactions(folder: Path) -> pd.DataFrame:
    """Return ``user, item, weight, timestamp`` (ids as strings, weight = rating, UTC times)."""
    df = pd.read_csv(
        _need(folder, "u.data"), sep="\t", header=None,
        names=["user", "item", "weight", "ts"], dtype={"user": str, "item": str},
    )
    df["timestamp"] = pd.to_datetime(df.pop("ts"), unit="s", utc=True).astype("datetime64[us, UTC]")
    df["weight"] = df["weight"].astype("float64")
    return df


def load_users(folder: Path) -> pd.DataFrame:
    """Return ``user, age, gender, occupation, zip``."""
    return pd.read_csv(
        _need(folder, "u.user"), sep="|", header=None,
        names=["user", "age", "gender", "occupation", "zip"], dtype=str,
    ).astype({"age": "int64"})


def load_items(folder: Path) -> pd.DataFrame:
    """Return ``item, title, release_date, genres`` (genres as a '|'-joined string) and ``category``."""
    cols = ["item", "title", "release_date", "video_date", "url", *GENRES]
    df = pd.read_csv(_need(folder, "u.item"), sep="|", header=None, names=cols, dtype=str, encoding="latin-1")
    flags = df[list(GENRES)].astype(int).to_numpy().astype(bool)
    names = pd.Series(GENRES)
    df["genres"] = ["|".join(names[row]) for row in flags]
    # primary category: the first flagged genre, ignoring "unknown" when another is set
    df["category"] = [next((g for g, f in zip(GENRES[1:], row[1:]) if f), "unknown") for row in flags]
    df["release_date"] = pd.to_datetime(df["release_date"], format="%d-%b-%Y", errors="coerce", utc=True)
    return df[["item", "title", "release_date", "genres", "category"]]


def load_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """Canonical tables (raw, before validation) for MovieLens under source ``movielens``."""
    inter = load_interactions(folder)
    users = load_users(folder)
    items = load_items(folder)
    first_seen = inter.groupby("user")["timestamp"].max()
    ident = pd.DataFrame({
        "source": "movielens",
        "record_id": users["user"],
        "member_id": "ml-" + users["user"],
        "observed_at": users["user"].map(first_seen),
    })
    profiles = pd.DataFrame({
        "source": "movielens",
        "record_id": users["user"],
        "birth_year": DATA_YEAR - users["age"],
        "gender": users["gender"],
        "city": users["zip"],
        "occupation": users["occupation"],
        "observed_at": ident["observed_at"],
    })
    events = pd.DataFrame({
        "source": "movielens",
        "record_id": inter["user"],
        "event_type": "rate",
        "item_id": inter["item"],
        "channel": "web",
        "ts": inter["timestamp"],
        "value": inter["weight"],
    })
    item_tab = pd.DataFrame({
        "item_id": items["item"],
        "category": items["category"],
        "launch_date": items["release_date"],
        "title": items["title"],
    })
    return {"identity_records": ident, "profiles": profiles, "events": events, "items": item_tab}
