#!/usr/bin/env bash
# Objectives benchmark: regenerates docs/perf/objectives.md.
#
#   scripts/bench-objectives.sh [services] [runs]     (default 1000 services, 7 runs)
#
# On a scratch database of the local PostgreSQL (migrated by the release
# binary, tenant `bench`): benches/objectives.rs writes a full 30-day period
# of rollups for each service (720 hour rows, 360 minute rows of healthy
# traffic) and one availability objective each, then times the detector
# leader's pass over every objective (`detect::objectives::Burning::evaluate`:
# two range reads per objective and the window arithmetic), one pass after
# another.
set -euo pipefail
SERVICES=${1:-1000}
RUNS=${2:-7}
DB=pulsyon_bench_objectives
. "$(dirname "$0")/bench-lib.sh"
(cd "$root" && cargo bench --quiet --bench objectives --no-run 2>/dev/null)
say "$SERVICES services with an objective each; $RUNS evaluations"
OUT=$(cd "$root" && cargo bench --quiet --bench objectives -- --database-url "$DB_URL" --tenant bench \
  --services "$SERVICES" --runs "$RUNS" | tail -n 1)
echo "$OUT"
num() { python3 -c "import json,sys; print(f'{json.loads(sys.argv[1])[sys.argv[2]]:{sys.argv[3]}}')" "$OUT" "$1" "$2"; }
cat >"$root/docs/perf/objectives.md" <<MD
# Objectives

\`scripts/bench-objectives.sh $SERVICES $RUNS\` on this machine ($(nproc) cores, PostgreSQL
$(psql "$URL" -Atc 'SHOW server_version' | cut -d' ' -f1) and the benchmark on the same cores), $(date -u +%Y-%m-%d).

$SERVICES services, each with a full 30-day period of rollups (720 hour rows and 360 minute
rows of healthy traffic, written directly) and one availability objective at 99.9 % over
30 days. The detector's leader reads every objective each \`--objective-interval\` (30 s by
default): two range reads per objective (the minute rows of the last 6 h for the windows up
to 6 h, the hour rows of the period for 1 d, 3 d and the period) and the window arithmetic
(\`detect::objectives::Burning::evaluate\`). Healthy traffic fires nothing: the figure is the
reading alone. Median of $RUNS passes, one after another, after one to warm the caches.

| measure | value |
|---|---|
| wall time per pass over every objective (this process and PostgreSQL) | $(num wall_ms_per_evaluation .1f) ms |
| per objective | $(num wall_ms_per_objective .2f) ms |
| this process's CPU per pass | $(num process_cpu_ms_per_evaluation .1f) ms |
| share of a core at the 30 s interval, wall time (an upper bound of both together) | **$(num core_share_wall_at_30s .3f)** |
| share of a core at the 30 s interval, this process alone | $(num core_share_process_at_30s .3f) |

Raw result:
\`\`\`
$OUT
\`\`\`
MD
say "wrote docs/perf/objectives.md"
