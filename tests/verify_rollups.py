#!/usr/bin/env python3
"""Independent check of fleetstream's rollups: recompute every 1-minute (vehicle, signal) window
from the raw wide-JSON NDJSON input with plain Python and compare with the SQLite output.

Usage: verify_rollups.py INPUT.ndjson OUTPUT.db [--window-ms 60000]
Exit 0 when every window matches (count, min, max, first, last exactly; mean and stddev within
1e-9 relative), 1 otherwise. Assumes no record was late or rejected (true for W1).
"""
import argparse
import json
import math
import sqlite3
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("db")
    parser.add_argument("--window-ms", type=int, default=60_000)
    args = parser.parse_args()

    # key -> [count, mean, m2, min, max, first_ts, first, last_ts, last]
    windows = {}
    with open(args.input, "rb") as handle:
        for line in handle:
            record = json.loads(line)
            ts = record["ts"]
            start = ts - ts % args.window_ms
            vehicle = record["vehicle_id"]
            for name, value in record["signals"].items():
                value = float(value)
                key = (vehicle, name, start)
                w = windows.get(key)
                if w is None:
                    windows[key] = [1, value, 0.0, value, value, ts, value, ts, value]
                    continue
                w[0] += 1
                delta = value - w[1]
                w[1] += delta / w[0]
                w[2] += delta * (value - w[1])
                if value < w[3]:
                    w[3] = value
                if value > w[4]:
                    w[4] = value
                if ts < w[5]:
                    w[5], w[6] = ts, value
                if ts >= w[7]:
                    w[7], w[8] = ts, value

    connection = sqlite3.connect(args.db)
    rows = connection.execute(
        "SELECT vehicle_id, signal, window_start_ms, count, min, max, mean, stddev, first, last FROM rollups"
        " WHERE rollup = 'signal_1m'"
    ).fetchall()
    problems = []
    if len(rows) != len(windows):
        problems.append(f"{len(rows)} rollups in the database, {len(windows)} expected")
    close = lambda a, b, tol: abs(a - b) <= tol * (1.0 + max(abs(a), abs(b)))
    for vehicle, signal, start, count, lo, hi, mean, stddev, first, last in rows:
        w = windows.get((vehicle, signal, start))
        if w is None:
            problems.append(f"unexpected rollup {vehicle} {signal} {start}")
            continue
        want_std = math.sqrt(w[2] / (w[0] - 1)) if w[0] > 1 else None
        ok = (
            count == w[0]
            and lo == w[3]
            and hi == w[4]
            and first == w[6]
            and last == w[8]
            and close(mean, w[1], 1e-9)
            and ((stddev is None and want_std is None) or (stddev is not None and want_std is not None and close(stddev, want_std, 1e-7)))
        )
        if not ok:
            problems.append(f"mismatch {vehicle} {signal} {start}: got {(count, lo, hi, mean, stddev, first, last)}, want {w}")
    for problem in problems[:20]:
        print(problem, file=sys.stderr)
    values = sum(w[0] for w in windows.values())
    if problems:
        print(f"verify_rollups: FAILED ({len(problems)} problems)", file=sys.stderr)
        return 1
    print(f"verify_rollups: {len(rows)} windows over {values} values match the independent computation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
