"""The classroom CO2 data set: wind speed (m/s) against CO2 concentration (ppm).

Generated, not measured: a ventilated classroom where more wind through the windows means less CO2.
``python -m autograder.course.lec03.co2`` rewrites ``assignments/lec03/co2.csv`` byte for byte (fixed seed).
Rows 1-1000 are the training set and rows 1001-1002 the test set, as on the lecture slides.
"""
from __future__ import annotations

import csv
import io

import numpy as np

SEED = 3
N_ROWS = 1002
N_TRAIN = 1000
HEADER = ("ID", "wind_speed_m_s", "co2_ppm")


def generate() -> str:
    rng = np.random.default_rng(SEED)
    wind = rng.uniform(0.2, 8.0, N_ROWS)
    co2 = 1150.0 - 75.0 * wind + rng.normal(0.0, 45.0, N_ROWS)
    co2 = np.maximum(co2, 415.0)            # never below outdoor air
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for i, (w, c) in enumerate(zip(wind, co2), start=1):
        writer.writerow((i, f"{w:.2f}", f"{c:.1f}"))
    return out.getvalue()


if __name__ == "__main__":
    from autograder import assignment

    target = assignment.current().public_files["co2.csv"]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(generate(), encoding="utf-8")
    print(f"wrote {target}")
