"""Champion models from the MLflow registry, swapped without a restart.

A :class:`Bundle` is an immutable snapshot: the models served (by kind, each with
its registered name and version) plus the data they need (identity index,
feature tables, feature store), all loaded outside the request path. A request
handler reads ``loader.bundle`` once and uses only that snapshot, so a request
never mixes two versions. :meth:`Loader.refresh` builds the next bundle beside
the current one (loading only what changed) and publishes it with one attribute
assignment, which is atomic in CPython: requests in flight finish on the old
bundle, new ones get the new bundle, none fails during a promotion.

Refreshes happen (a) at start, (b) when an operator calls the reload endpoint,
(c) every ``poll_seconds`` in a background thread, and (d) when the reload marker
file (touched by the reload endpoint) changes, so every worker of a multi-worker
server follows a reload, not only the one that received it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from serving.config import ServeConfig
from serving.errors import NotLoaded

log = logging.getLogger("portrait.serving")
LOAD_FAILED = "loading "  # how Bundle.errors starts for a kind whose champion exists but failed to load


@dataclass(frozen=True)
class ServedModel:
    kind: str  # recommender, churn, ltv, propensity, lookalike
    name: str  # registered model name
    version: str  # registry version
    run_id: str | None  # the training run (the hand-off between training and serving)
    model: Any  # what serving calls: a pyfunc model or the object an adapter unwrapped from it
    loaded_at: str  # UTC ISO time


@dataclass(frozen=True)
class Bundle:
    generation: int
    models: Mapping[str, ServedModel] = field(default_factory=lambda: MappingProxyType({}))
    resources: Any = None  # serving.resources.Resources, or None before the data exists
    errors: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # kind -> last load error

    def model(self, kind: str) -> ServedModel:
        """The served model of ``kind``; raises :class:`NotLoaded` (-> 503) when there is none."""
        try:
            return self.models[kind]
        except KeyError:
            why = self.errors.get(kind, "no registered model has the alias")
            raise NotLoaded(f"model not loaded: {kind} ({why})") from None

    def versions(self) -> dict[str, str]:
        return {k: m.version for k, m in self.models.items()}

    def with_champions(self, kinds: tuple[str, ...] = ("churn", "ltv", "propensity")) -> tuple[list[str], list[str]]:
        """``(kinds to score, kinds skipped)`` when a caller names none: a kind without a registered model
        is skipped; one that has a model but failed to load stays, so the caller's answer names its error."""
        # the loader's own prefix, not a word of the exception's text (which may well mention the registry)
        skipped = [k for k in kinds if k not in self.models and not self.errors.get(k, "").startswith(LOAD_FAILED)]
        return [k for k in kinds if k not in skipped], skipped

    def default_kinds(self, named: list[str] | None) -> list[str]:
        """``named`` (each once), else :meth:`with_champions`; :class:`NotLoaded` when no model has one."""
        if named is not None:
            return list(dict.fromkeys(named))
        kinds, skipped = self.with_champions()
        if not kinds:
            why = "; ".join(f"{k}: {self.errors.get(k, 'no registered model has the alias')}" for k in skipped)
            raise NotLoaded(f"no model to score ({why}): train one first (`portrait train {skipped[0]}`) "
                            "and give it the served alias (`portrait models promote`)")
        return kinds


def load_pyfunc(kind: str, uri: str) -> Any:
    """Default model loader: the MLflow pyfunc, unwrapped to its Python model when it has one."""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(uri)
    try:
        return model.unwrap_python_model()
    except Exception:  # flavours other than python_function (e.g. sklearn) keep the pyfunc wrapper
        return model


ModelLoaderFn = Callable[[str, str], Any]
ResourcesFn = Callable[[ServeConfig, Any], Any]


class Loader:
    """Builds and atomically publishes :class:`Bundle` snapshots.

    Parameters
    ----------
    config : ServeConfig
        Registry URI, alias, registered names and polling period.
    load_model : callable(kind, model_uri) -> object
        Loads one model version; default :func:`load_pyfunc`.
    load_resources : callable(config, previous) -> resources, optional
        Loads the data the models need; receives the previous resources so it can
        reuse what did not change. None serves models only.
    """

    def __init__(self, config: ServeConfig, load_model: ModelLoaderFn = load_pyfunc,
                 load_resources: ResourcesFn | None = None,
                 prepare: Callable[[Mapping[str, ServedModel], Any], None] | None = None) -> None:
        self.config = config
        self.load_model = load_model
        self.load_resources = load_resources
        self.prepare = prepare  # runs on the next bundle before it is published (e.g. tag cut points)
        self.on_change: Callable[[], None] | None = None  # called after a new bundle is published
        self._bundle = Bundle(generation=0)
        self._refresh_lock = threading.Lock()  # one refresh at a time; readers never take it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._marker_mtime = self._marker()
        self.loaded_once = False

    @property
    def bundle(self) -> Bundle:
        return self._bundle

    def _client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.config.mlflow_uri, registry_uri=self.config.mlflow_uri)

    def _champions(self) -> tuple[dict[str, tuple[str, str, str | None]], dict[str, str]]:
        """kind -> (name, version, run_id) for every kind whose alias exists; kind -> error otherwise."""
        found, errors = {}, {}
        client = self._client()
        for kind, name in self.config.model_names.items():
            try:
                mv = client.get_model_version_by_alias(name, self.config.alias)
            except Exception as exc:  # missing model/alias, unreachable store: serve what we have
                errors[kind] = f"no '{name}@{self.config.alias}' in the registry ({type(exc).__name__})"
                continue
            found[kind] = (name, str(mv.version), mv.run_id)
        return found, errors

    def refresh(self) -> list[str]:
        """Load what changed in the registry and data, publish a new bundle; returns changed kinds."""
        with self._refresh_lock:
            old = self._bundle
            models = dict(old.models)
            try:
                champions, errors = self._champions()
            except Exception as exc:
                log.warning("registry unreachable, keeping current models: %s", type(exc).__name__)
                champions, errors = {k: (m.name, m.version, m.run_id) for k, m in models.items()}, {}
            changed = []
            for kind, (name, version, run_id) in champions.items():
                cur = models.get(kind)
                if cur is not None and (cur.name, cur.version) == (name, version):
                    continue
                try:
                    # the version's own artifact URI: loading never depends on MLflow's global registry URI
                    obj = self.load_model(kind, self._client().get_model_version_download_uri(name, version))
                except Exception as exc:  # a broken new version must not take the old one down
                    errors[kind] = f"{LOAD_FAILED}{name} v{version} failed: {type(exc).__name__}: {exc}"
                    log.error("%s", errors[kind])
                    continue
                now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
                models[kind] = ServedModel(kind, name, version, run_id, obj, now)
                changed.append(kind)
            for kind in errors:  # a kind that still serves an older version is reported, not dropped
                if kind in models and kind not in champions:
                    errors[kind] = f"alias gone; still serving v{models[kind].version}"
            resources = old.resources
            if self.load_resources is not None:
                try:
                    resources = self.load_resources(self.config, old.resources)
                except Exception as exc:
                    errors["resources"] = f"{type(exc).__name__}: {exc}"
                    log.error("loading serving data failed: %s", errors["resources"])
            if self.prepare is not None and (changed or resources is not old.resources):
                try:
                    self.prepare(models, resources)
                except Exception as exc:  # noqa: BLE001 - serving without tag cut points beats not serving
                    errors["prepare"] = f"{type(exc).__name__}: {exc}"
                    log.error("preparing models failed: %s", errors["prepare"])
            if changed or resources is not old.resources or dict(errors) != dict(old.errors):
                self._bundle = replace(old, generation=old.generation + 1, models=MappingProxyType(models),
                                       resources=resources, errors=MappingProxyType(errors))
            self.loaded_once = True
            if self._bundle is not old and self.on_change is not None:
                self.on_change()
            for kind in changed:
                log.info("serving %s v%s", models[kind].name, models[kind].version)
            return changed

    # ---- polling ------------------------------------------------------------------------------

    def _marker(self) -> float:
        try:
            return self.config.reload_marker.stat().st_mtime
        except OSError:
            return 0.0

    def touch_marker(self) -> None:
        """Ask every worker to reload (each polls the marker once a second)."""
        path = self.config.reload_marker
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dt.datetime.now(dt.timezone.utc).isoformat())
        self._marker_mtime = self._marker()  # this worker reloads itself synchronously

    def start(self) -> None:
        """Start the background thread (registry poll + reload marker)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="portrait-model-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        last_poll = time.monotonic()
        while not self._stop.wait(1.0):
            marker = self._marker()
            due = self.config.poll_seconds > 0 and time.monotonic() - last_poll >= self.config.poll_seconds
            if marker != self._marker_mtime or due:
                self._marker_mtime = marker
                last_poll = time.monotonic()
                try:
                    self.refresh()
                except Exception:  # the poller must survive anything; the next tick retries
                    log.exception("model refresh failed")
