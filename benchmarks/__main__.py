"""Run every benchmark (``make bench``), each in its own process, and stop on the first failure.

``python -m benchmarks``            all of them, in the order below
``python -m benchmarks NAME ...``   only those (e.g. ``recommenders lookalike``)

Each benchmark prints its anchors beside its figures and writes its section of RESULTS.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ORDER = ["generator", "identity", "features", "customer_value", "recommenders", "lookalike", "serving", "serving_soak"]


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    present = [p.stem for p in here.glob("*.py") if not p.stem.startswith("_")]
    names = argv or [n for n in ORDER if n in present] + sorted(set(present) - set(ORDER))
    unknown = [n for n in names if n not in present]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {sorted(present)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"\n=== benchmarks.{name} ===", flush=True)
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"], cwd=here.parent)
        if code:
            print(f"benchmarks.{name} failed with exit code {code}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
