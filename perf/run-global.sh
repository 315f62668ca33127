#!/usr/bin/env bash
# Measures the single-thread workloads of perf/benches/recorder.rs through each recorder installed as the
# process's global `metrics` recorder, as its README installs it (perf/benches/recorder_global.rs): one bench
# process per recorder (BENCH_RECORDER), then prints the medians and means of every `global_*` group and the
# medians as a table.
#
#   perf/run-global.sh [RECORDER...] [-- CRITERION_ARGS...]
#
# RECORDER: ours, ours_percentiles, prometheus, metrics_cloudwatch, metrics_cloudwatch_embedded (default: all, in
# that order). CRITERION_ARGS go to the bench, e.g. `-- counter_static` to run one workload (criterion filters on
# the bench id, `global_counter_static/ours`) or `-- --test` to run each bench once. About 30 s per recorder and
# workload (7 workloads).
set -euo pipefail
cd "$(dirname "$0")/.."
recorders=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    recorders+=("$1")
    shift
done
[ "${1:-}" = "--" ] && shift
if [ ${#recorders[@]} -eq 0 ]; then
    recorders=(ours ours_percentiles prometheus metrics_cloudwatch metrics_cloudwatch_embedded)
fi
for recorder in "${recorders[@]}"; do
    echo "=== BENCH_RECORDER=$recorder"
    BENCH_RECORDER="$recorder" cargo bench -p cloudwatch-counters-perf --bench recorder_global -- "$@"
done
case " $* " in
*" --test "* | *" --list "*) exit 0 ;;
esac
perf/medians.sh '^global_'
echo
perf/medians.sh --table '^global_'
