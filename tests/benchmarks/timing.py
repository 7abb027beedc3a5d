"""Side-by-side timing shared by the benchmark scripts (run as scripts, so imported as `timing`)."""
from __future__ import annotations

import time

import numpy as np


def measure(call: dict, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall-clock and process-CPU ms per call; the candidates alternate each repeat."""
    wall, cpu = {name: [] for name in call}, {name: [] for name in call}
    for _ in range(repeats):
        for name, run in call.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall[name].append((time.perf_counter() - start_wall) * 1000)
            cpu[name].append((time.process_time() - start_cpu) * 1000)
    return ({name: float(np.median(t)) for name, t in wall.items()},
            {name: float(np.median(t)) for name, t in cpu.items()})
