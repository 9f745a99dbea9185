"""Wall time of the offline run (``make demo``'s work) with the default sample, in this process, warm.

Measured from the start of :func:`truthflow.local.offline_run.run_offline` to the written report; imports of moto and
matplotlib are warmed by a first run that is not counted. Target: < 60 s warm on this 2-core machine.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from truthflow.local.offline_run import DemoOptions, run_offline


def run(repeats: int = 2) -> dict[str, object]:
    times: list[float] = []
    status = ""
    summary: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as folder:
        for attempt in range(repeats + 1):
            start = time.perf_counter()
            outcome = run_offline(DemoOptions(out=Path(folder) / str(attempt)), progress=lambda _: None)
            if attempt:
                times.append(time.perf_counter() - start)
            status, summary = outcome.status, outcome.summary
    return {"status": status, "best_seconds": min(times), "runs": repeats, "summary": summary}


if __name__ == "__main__":
    result = run()
    print(f"offline run (default sample): {result['status']}, best of {result['runs']}: {result['best_seconds']:.1f} s")
