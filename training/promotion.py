"""Champion / challenger bookkeeping in the MLflow model registry: gate, promote, roll back, list.

A new version registered by :func:`training.registry.log_and_register` carries the
alias ``challenger``. :func:`gate` scores it and the current ``champion`` with the same
function on the same holdout and moves ``champion`` only when the challenger is strictly
better (or there is none); :func:`gate_and_tag` also records the decision on the active
run. :func:`promote` and :func:`rollback` are the manual levers (``portrait models
promote|rollback``); each champion change is appended to the registered model's
``champion_history`` tag so a rollback can restore the previous one. Everything here is
re-exported by :mod:`training.registry`, the one entry point training jobs use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"  # comma-separated champion versions, oldest first


@dataclass(frozen=True)
class GateDecision:
    name: str  # registered model name
    challenger: str  # version that was judged
    champion_before: str | None  # champion version before the decision (None: there was none)
    challenger_score: float  # metric of the challenger on the holdout
    champion_score: float | None  # metric of the old champion on the same holdout
    promoted: bool  # whether the challenger became champion
    reason: str  # one line for people


def champion_version(name: str) -> str | None:
    """Current champion version of ``name`` (None when there is none or no such model)."""
    import mlflow

    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except mlflow.exceptions.MlflowException:
        return None


def _history(client: Any, name: str) -> list[str]:
    tag = client.get_registered_model(name).tags.get(HISTORY_TAG, "")
    return [v for v in tag.split(",") if v]


def promote(name: str, version: str | int, reason: str = "manual") -> None:
    """Make ``version`` the champion of ``name`` (recorded in ``champion_history``)."""
    import mlflow

    client = mlflow.MlflowClient()
    version = str(version)
    client.get_model_version(name, version)  # raises with a clear message when absent
    client.set_registered_model_alias(name, CHAMPION, version)
    hist = _history(client, name)
    if not hist or hist[-1] != version:
        hist.append(version)
    client.set_registered_model_tag(name, HISTORY_TAG, ",".join(hist))
    client.set_model_version_tag(name, version, "promoted_reason", reason[:500])


def rollback(name: str) -> str:
    """Restore the previous champion of ``name``; returns the version now champion."""
    import mlflow

    client = mlflow.MlflowClient()
    hist = _history(client, name)
    if len(hist) < 2:
        raise ValueError(f"model {name!r} has no previous champion to roll back to (champion history: "
                         f"{','.join(hist) or 'empty'}); see its versions with `portrait models list {name}` and "
                         f"make one champion with `portrait models promote {name} VERSION`")
    hist.pop()
    previous = hist[-1]
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.set_registered_model_tag(name, HISTORY_TAG, ",".join(hist))
    return previous


def _same(a: str, b: str) -> bool:
    try:  # 180 and 180.0 (a config file's float) are the same horizon
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def task_differences(name: str, version: str, task: dict[str, Any]) -> list[str]:
    """The ``task`` params (e.g. ``dataset.horizon_days``) on which ``version``'s training run differs.

    A param the run did not log (an older run) is not held against it.
    """
    import mlflow

    client = mlflow.MlflowClient()
    run_id = client.get_model_version(name, version).run_id
    params = client.get_run(run_id).data.params if run_id else {}
    return [f"{k} {params[k]} vs {v}" for k, v in task.items() if k in params and not _same(params[k], str(v))]


def gate(
    name: str,
    version: str | int,
    score: Callable[[Any], float],
    higher_is_better: bool = True,
    metric: str = "metric",
    task: dict[str, Any] | None = None,
) -> GateDecision:
    """Promote ``version`` to champion only if it beats the current champion on the same holdout.

    ``score(pyfunc_model) -> float`` evaluates a loaded pyfunc model on the caller's
    holdout; it is applied to the challenger and to the champion alike. Ties, a NaN
    challenger score, or a champion that cannot score the holdout (an error) keep the champion;
    a champion whose score is NaN (its predictions there are unusable) loses to a finite one
    (the reason says why; ``portrait models promote`` overrides by hand). ``task`` names the
    params that define what the model predicts (label horizon, population): a champion trained
    for another task is not compared, since scoring it on the challenger's labels always loses
    (a 30-day churn model replaced the 90-day champion that way), and it stays champion.
    """
    import math

    import mlflow.pyfunc

    version = str(version)
    current = champion_version(name)
    chal = float(score(mlflow.pyfunc.load_model(f"models:/{name}/{version}")))
    if current is None:
        ok = math.isfinite(chal)
        if ok:
            promote(name, version, f"first champion ({metric}={chal:.4f})")
        return GateDecision(name, version, None, chal, None, ok,
                            f"no champion yet; {metric}={chal:.4f}" + ("" if ok else " is not finite"))
    if current == version:
        return GateDecision(name, version, current, chal, chal, False, "already champion")
    differs = task_differences(name, current, task or {})
    if differs:
        return GateDecision(name, version, current, chal, None, False,
                            f"champion v{current} predicts another target ({'; '.join(differs)}): not compared, "
                            f"champion kept; `portrait models promote {name} {version}` switches by hand")
    try:
        champ = float(score(mlflow.pyfunc.load_model(f"models:/{name}/{current}")))
    except Exception as exc:  # noqa: BLE001 - an incompatible champion is reported, not fatal
        return GateDecision(name, version, current, chal, None, False,
                            f"champion v{current} cannot score this holdout ({type(exc).__name__}: {exc}); kept")
    if math.isfinite(chal) and not math.isfinite(champ):  # the champion scores this holdout with NaNs: broken here
        promote(name, version, f"{metric} {chal:.4f}; champion v{current} scored {champ} on the same holdout")
        return GateDecision(name, version, current, chal, champ, True,
                            f"{metric}: challenger v{version} {chal:.4f} vs champion v{current} {champ} "
                            "(not finite: its predictions on this holdout are unusable); promoted")
    better = math.isfinite(chal) and (chal > champ if higher_is_better else chal < champ)
    if better:
        promote(name, version, f"{metric} {chal:.4f} beats champion v{current} {champ:.4f}")
    verdict = "promoted" if better else "kept champion"
    return GateDecision(name, version, current, chal, champ, better,
                        f"{metric}: challenger v{version} {chal:.4f} vs champion v{current} {champ:.4f}; {verdict}")


def gate_and_tag(name: str, version: str | int, score: Callable[[Any], float], metric: str,
                 higher_is_better: bool = True, task: dict[str, Any] | None = None) -> GateDecision:
    """:func:`gate`, then record the decision as tags of the active MLflow run (``gate.promoted``, ``gate.reason``)."""
    import mlflow

    decision = gate(name, version, score, higher_is_better=higher_is_better, metric=metric, task=task)
    mlflow.set_tags({"gate.promoted": str(decision.promoted), "gate.reason": decision.reason[:5000],
                     "model_version": str(version)})
    return decision


def _number(text: str) -> float | str:
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def list_versions(name: str | None = None) -> list[dict[str, Any]]:
    """Every registered version (of ``name``, or of all models): name, version, aliases, run, metrics."""
    import mlflow

    client = mlflow.MlflowClient()
    names = [name] if name else [m.name for m in client.search_registered_models()]
    rows = []
    for n in names:
        by_version: dict[str, list[str]] = {}
        for alias, v in (client.get_registered_model(n).aliases or {}).items():
            by_version.setdefault(str(v), []).append(alias)
        for mv in client.search_model_versions(f"name = '{n}'"):
            rows.append({
                "name": n, "version": str(mv.version), "aliases": sorted(by_version.get(str(mv.version), [])),
                "run_id": mv.run_id, "created": mv.creation_timestamp,
                # MLflow tags are text; the metrics are numbers (so --json prints numbers)
                "metrics": {k.removeprefix("metric."): _number(v) for k, v in (mv.tags or {}).items()
                            if k.startswith("metric.")},
            })
    return sorted(rows, key=lambda r: (r["name"], int(r["version"])))

