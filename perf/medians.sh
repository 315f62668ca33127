#!/usr/bin/env bash
# Prints criterion's estimates from the last run of each bench: group, bench, median and mean, in ns per
# iteration (criterion's `new/estimates.json`; the median is the figure BENCHMARKS.md takes for
# perf/benches/layer.rs' span group, whose mean a slow batch moves).
#
#   perf/medians.sh [--table] [REGEX]
#
# REGEX (Python syntax) keeps the benches whose `group/bench` id it matches, e.g. '^global_' or 'span'.
# --table prints the medians as a Markdown table instead: a row per group, a column per bench.
# Results are read from $CRITERION_HOME, else ${CARGO_TARGET_DIR:-<repo>/target}/criterion (where criterion
# writes them); `--test` runs write none.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${CRITERION_HOME:-${CARGO_TARGET_DIR:-$root/target}/criterion}"
table=0
if [ "${1:-}" = "--table" ]; then
    table=1
    shift
fi
exec python3 - "$dir" "$table" "${1:-}" <<'PY'
import json, os, re, sys

directory, table, pattern = sys.argv[1], sys.argv[2] == "1", re.compile(sys.argv[3])
rows = []
for here, _dirs, files in os.walk(directory):
    if os.path.basename(here) != "new" or "estimates.json" not in files:
        continue
    with open(os.path.join(here, "estimates.json")) as f:
        estimates = json.load(f)
    group = bench = None
    if "benchmark.json" in files:
        with open(os.path.join(here, "benchmark.json")) as f:
            meta = json.load(f)
        group = meta.get("group_id")
        bench = "/".join(p for p in (meta.get("function_id"), meta.get("value_str")) if p)
    if group is None:
        parts = os.path.relpath(os.path.dirname(here), directory).split(os.sep)
        group, bench = parts[0], "/".join(parts[1:])
    if not pattern.search(f"{group}/{bench}"):
        continue
    rows.append((group, bench, estimates["median"]["point_estimate"], estimates["mean"]["point_estimate"]))

if not rows:
    sys.exit(f"no criterion estimates under {directory}" + (f" matching {pattern.pattern!r}" if pattern.pattern else ""))
rows.sort()


def ns(value):
    return f"{value:,.1f}" if value < 1e5 else f"{value:,.0f}"


if table:
    benches = []
    for _, bench, _, _ in rows:
        if bench not in benches:
            benches.append(bench)
    medians = {(g, b): m for g, b, m, _ in rows}
    groups = sorted({g for g, _, _, _ in rows})
    print("| median, ns | " + " | ".join(benches) + " |")
    print("|---|" + "---|" * len(benches))
    for g in groups:
        print(f"| {g} | " + " | ".join(ns(medians[(g, b)]) if (g, b) in medians else "—" for b in benches) + " |")
else:
    width_g = max(len(r[0]) for r in rows)
    width_b = max(len(r[1]) for r in rows)
    print(f"{'group':<{width_g}}  {'bench':<{width_b}}  {'median ns':>14}  {'mean ns':>14}")
    for g, b, median, mean in rows:
        print(f"{g:<{width_g}}  {b:<{width_b}}  {ns(median):>14}  {ns(mean):>14}")
PY
