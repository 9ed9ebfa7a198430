"""The CLI's write of the ``lookalike_audiences`` predicted tag after an audience change (see features/audience_tags.py)."""

from __future__ import annotations

from portrait.commands._common import console, fail, settings


def sync_lookalike_tag(required: bool = False) -> str:
    """Bring Feast's ``lookalike_audiences`` tag in line with the saved lookalike audiences; a status line.

    After a lookalike audience is created, replaced or deleted. Without an applied feature
    store, or when the write fails, the audience change stands and a warning says how to catch
    up; ``required`` (the ``sync-tags`` command) makes both an error.
    """
    from rich.markup import escape

    from features.audience import AudienceError, AudienceStore
    from features.audience_tags import feature_store_ready, sync_lookalike_tags

    from portrait.commands.feature_store import _open

    s = settings()
    if not feature_store_ready(s.data_dir):
        status = (f"lookalike_audiences not written: no feature store in {s.feast_dir} "
                  "(run `portrait features apply`, then `portrait audience sync-tags`)")
        if required:
            fail(status)
        console.print(f"[yellow]note:[/] {escape(status)}", soft_wrap=True)
        return status
    try:
        status = sync_lookalike_tags(AudienceStore(s.audiences_dir), _open(None)).summary()
    except AudienceError as exc:
        status = f"lookalike_audiences not written: {exc}"
    except Exception as exc:  # noqa: BLE001 - Feast/IO: the audience change is saved; say how to retry
        status = f"lookalike_audiences not written: {type(exc).__name__}: {exc}; retry with `portrait audience sync-tags`"
    if status.startswith("lookalike_audiences not written"):
        if required:
            fail(status)
        console.print(f"[yellow]warning:[/] {escape(status)}", soft_wrap=True)
    else:
        console.print(status)
    return status
