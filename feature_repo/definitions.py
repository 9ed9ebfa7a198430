"""portrait's Feast definitions: entity, source, feature view, feature service, in that order.

Read by ``feast apply`` run in this folder and by ``features.store.open_store`` (which loads
this file with ``PORTRAIT_DATA_DIR`` set from portrait's Settings). File sources need
absolute paths, so they are resolved here from ``PORTRAIT_DATA_DIR`` (default: ``<repo>/data``,
the same folder ``feature_store.yaml`` points at).

The customer views take their columns from the feature table the ``features`` step wrote
(``<data>/features/customer_features.parquet``): every column but the keys becomes a
feature, typed from the Parquet schema and described from ``features.build``'s column list,
so the per-dataset ``affinity_<category>`` columns and new features need no edit here.
Rule tags (``tag_*`` columns) form their own view.
"""

import os
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float64, Int64, String, UnixTimestamp

from features.build import ITEM_COLUMNS, customer_columns
from features.feast_ext.schema import parquet_fields

DATA = Path(os.environ.get("PORTRAIT_DATA_DIR") or Path(__file__).resolve().parents[1] / "data").resolve()
CUSTOMER_TABLE = DATA / "features" / "customer_features.parquet"
ITEM_TABLE = DATA / "features" / "item_features.parquet"
PREDICTED_TABLE = DATA / "feast" / "predicted_tags.parquet"

_customer_fields = parquet_fields(CUSTOMER_TABLE, keys=("one_id", "event_timestamp"),
                                  descriptions={n: d for n, _, d in customer_columns([])})
_item_fields = parquet_fields(ITEM_TABLE, keys=("item_id", "event_timestamp"),
                              descriptions={n: d for n, _, d in ITEM_COLUMNS})
# What a recommender conditions on: who the customer is and what they like.
_PROFILE = {"age", "gender", "city", "reg_channel", "occupation", "tenure_days", "top_category",
            "top_category_share", "n_categories_365d", "recency_days", "frequency_90d", "monetary_90d"}
_recsys_fields = [f.name for f in _customer_fields if f.name in _PROFILE or f.name.startswith("affinity_")]

# A person after OneID resolution.
customer = Entity(name="customer", join_keys=["one_id"], value_type=ValueType.STRING, description="a person (OneID)")
# A catalogue item.
item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.STRING, description="a catalogue item")

# Customer features and rule tags, one snapshot per cutoff (portrait features build).
customer_source = FileSource(name="customer_features_source", path=str(CUSTOMER_TABLE),
                             timestamp_field="event_timestamp")
# Item features, one snapshot per cutoff.
item_source = FileSource(name="item_features_source", path=str(ITEM_TABLE), timestamp_field="event_timestamp")
# Model scores written back by scoring: pushed online, appended to this Parquet file offline.
predicted_tags_push = PushSource(
    name="predicted_tags_push",
    batch_source=FileSource(name="predicted_tags_source", path=str(PREDICTED_TABLE),
                            timestamp_field="event_timestamp"),
)

# Behaviour, value and profile features of a customer; a snapshot is valid for 400 days.
customer_features = FeatureView(
    name="customer_features", entities=[customer], ttl=timedelta(days=400), source=customer_source,
    schema=[f for f in _customer_fields if not f.name.startswith("tag_")], online=True,
)
# Rule tags (lifecycle, RFM segment, AIPL, value tier, high potential: features/tag_catalog.yaml).
customer_tags = FeatureView(
    name="customer_tags", entities=[customer], ttl=timedelta(days=400), source=customer_source,
    schema=[f for f in _customer_fields if f.name.startswith("tag_")], online=True,
)
# Item popularity, conversion, category, brand, price band, age.
item_features = FeatureView(name="item_features", entities=[item], ttl=timedelta(days=400), source=item_source,
                            schema=_item_fields, online=True)
# Predicted tags: the latest scores of each model for a customer (valid 30 days).
predicted_tags = FeatureView(
    name="predicted_tags", entities=[customer], ttl=timedelta(days=30), source=predicted_tags_push, online=True,
    schema=[
        Field(name="churn_risk", dtype=Float64), Field(name="churn_tier", dtype=String),
        Field(name="ltv", dtype=Float64), Field(name="ltv_tier", dtype=String),
        Field(name="propensity", dtype=Float64), Field(name="propensity_decile", dtype=Int64),
        Field(name="lookalike_audiences", dtype=String),  # comma-separated audience names
        Field(name="model_name", dtype=String), Field(name="model_version", dtype=String),
        Field(name="scored_at", dtype=UnixTimestamp),
    ],
)

# One versioned service per model: a model trained on churn_v1 is served from churn_v1.
churn_v1 = FeatureService(name="churn_v1", features=[customer_features, customer_tags])
ltv_v1 = FeatureService(name="ltv_v1", features=[customer_features, customer_tags])
propensity_v1 = FeatureService(name="propensity_v1", features=[customer_features, customer_tags])
lookalike_v1 = FeatureService(name="lookalike_v1", features=[customer_features])
recsys_v1 = FeatureService(name="recsys_v1", features=[customer_features[_recsys_fields], customer_tags])
