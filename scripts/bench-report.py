#!/usr/bin/env python3
"""Prints criterion's results as a table with ratios to the named baseline of each group.

    cargo bench -p benches --bench format
    python3 scripts/bench-report.py            # reads target/criterion
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
BASELINES = {
    "json": "tracing_subscriber_json",
    "text": "tracing_subscriber_text",
    "span": "registry_noop",
}

for group, base in BASELINES.items():
    gdir = root / group
    if not gdir.is_dir():
        continue
    rows = {}
    for est in sorted(gdir.glob("*/new/estimates.json")):
        name = est.parent.parent.name
        data = json.loads(est.read_text())
        rows[name] = data["mean"]["point_estimate"]
    if not rows:
        continue
    ref = rows.get(base)
    print(f"\n{group} (ratio to {base})")
    print(f"| {'bench':<28} | {'ns/iter':>9} | {'ratio':>6} |")
    print(f"|{'-' * 30}|{'-' * 11}|{'-' * 8}|")
    for name, ns in sorted(rows.items(), key=lambda kv: kv[1]):
        ratio = f"{ns / ref:.2f}x" if ref else "-"
        print(f"| {name:<28} | {ns:>9.1f} | {ratio:>6} |")
