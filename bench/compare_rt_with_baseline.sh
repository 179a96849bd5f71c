#!/usr/bin/env bash
# The 64 B send().get() round trip of two bench_supervisor binaries (for example main's and a
# branch's), in the same run: 40 alternations of one 0.2 s sample each, so load drifts hit both
# alike; prints the medians and the ratio. On a shared box run it under a real-time policy
# (the default, CHRT="chrt -f 10"; CHRT= to turn it off), or both measure the scheduler.
#   OLD=/path/to/main/bench_supervisor NEW=build/release/bench/bench_supervisor bash bench/compare_rt_with_baseline.sh
set -euo pipefail
: "${OLD:?set OLD to the baseline bench_supervisor}"
NEW=${NEW:-build/release/bench/bench_supervisor}
CHRT=${CHRT-chrt -f 10}
ROUNDS=${ROUNDS:-40}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for round in $(seq 1 "$ROUNDS"); do
  for which in old new; do
    bin=$OLD; [ "$which" = new ] && bin=$NEW
    $CHRT "$bin" --benchmark_filter='^rt/send_get/64/real_time$' --benchmark_min_time=0.2 \
      --benchmark_format=json 2>/dev/null > "$tmp/${which}_${round}.json"
  done
done
python3 - "$tmp" <<'PY'
import glob, json, statistics, sys
vals = {}
for which in ("old", "new"):
    v = []
    for f in glob.glob(f"{sys.argv[1]}/{which}_*.json"):
        for b in json.load(open(f))["benchmarks"]:
            if b.get("run_type") == "iteration": v.append(b["real_time"] / 1000)
    vals[which] = sorted(v)
o, n = vals["old"], vals["new"]
print(f"rt/send_get/64, {len(o)}+{len(n)} samples: OLD median {statistics.median(o):.3f} us, "
      f"NEW median {statistics.median(n):.3f} us, NEW/OLD {statistics.median(n) / statistics.median(o):.3f}")
PY
