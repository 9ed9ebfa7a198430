"""portrait's Feast extensions, named by type in ``feature_repo/feature_store.yaml``.

- :mod:`.engine` - ``PortraitComputeEngine``: Feast's local compute engine with a bulk
  online write step (``batch_engine: type:``).
- :mod:`.sqlite_store` - ``PortraitSqliteOnlineStore``: one row per entity and view,
  bulk upserts in one transaction (``online_store: type:``).
- :mod:`.redis_store` - ``PortraitRedisOnlineStore``: Feast's Redis layout, written with
  pipelined bulk commands.
- :mod:`.encode` - vectorized protobuf encoding shared by both stores.
- :mod:`.response` - ``get_online_features`` responses written from the stored bytes (SQLite read hook).
- :mod:`.resp` - a batch of Redis commands packed into RESP bytes with numpy (bulk Redis writes).
- :mod:`.schema` - Feast fields typed from a feature table's Parquet schema.

They live in an installed package so both ``portrait`` and the plain ``feast`` CLI import them.
"""
