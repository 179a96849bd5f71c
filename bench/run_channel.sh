#!/usr/bin/env bash
# Runs bench_channel and prints the issue-2 table: medians per transport, the channel's ratios
# against socketpair / pipe, and pass/fail per target.
#   bash bench/run_channel.sh                    # release preset build (build/release)
#   BUILD_DIR=build/mine bash bench/run_channel.sh
#   REPS=5 MIN_TIME=0.2 PROCSUP_BENCH_IDLE_SECONDS=10 bash bench/run_channel.sh [extra benchmark flags]
set -euo pipefail
cd "$(dirname "$0")/.."
export PROCSUP_BENCH_IDLE_SECONDS=${PROCSUP_BENCH_IDLE_SECONDS:-10}
source bench/common.sh
bench_run bench_channel "$@"

python3 - "$out" "$shown" <<'PY'
import sys
sys.path.insert(0, "bench")
import bench_json
data, med = bench_json.load(sys.argv[1])
command = sys.argv[2]
def us(name): return bench_json.us(med, name)
def rate(name): return bench_json.rate(med, name)

def fmt(v, digits=2):
    return "n/a" if v is None else f"{v:.{digits}f}"

sizes = [("64 B", 64), ("4 KiB", 4096), ("64 KiB", 65536)]
rows = [("channel, hot (both spin)", "channel_hot"),
        ("channel, batched publication (streaming)", "channel_batched"),
        ("channel, hot, zero-copy", "channel_hot_zero_copy"),
        ("channel, wake path (futex / eventfd+epoll)", "channel_wake"),
        ("pipe pair", "pipe"), ("socketpair (AF_UNIX)", "socketpair"),
        ("Boost.Interprocess message_queue", "message_queue")]
stream = {"channel_hot": "stream64/channel", "channel_batched": "stream64/channel_batched", "pipe": "stream64/pipe", "socketpair": "stream64/socketpair"}
reps = max((b.get("repetitions", 1) for b in data["benchmarks"]), default=1)
print(f"Round trip (request N B, reply N B, parent <-> forked child), median of {reps} repetitions, wall time in us; streaming in million 64 B messages/s.\n")
print("| transport | RT 64 B (us) | RT 4 KiB (us) | RT 64 KiB (us) | stream 64 B (M msg/s) |")
print("|---|---:|---:|---:|---:|")
for label, key in rows:
    cells = [fmt(us(f"rt/{key}/{n}"), 3) for _, n in sizes]
    r = rate(stream[key]) if key in stream else None
    cells.append(fmt(r / 1e6 if r else None, 2) if key in stream else "")
    print(f"| {label} | " + " | ".join(cells) + " |")

def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b
targets = [
    ("64 B RT, hot", ratio(us("rt/channel_hot/64"), us("rt/socketpair/64")), "of socketpair", "<= 0.05 (1/20)", lambda r: r <= 0.05),
    ("64 B RT, wake path", ratio(us("rt/channel_wake/64"), us("rt/socketpair/64")), "of socketpair", "<= 1.2", lambda r: r <= 1.2),
    ("64 KiB RT, zero-copy", ratio(us("rt/channel_hot_zero_copy/65536"), us("rt/socketpair/65536")), "of socketpair", "<= 0.5", lambda r: r <= 0.5),
    ("64 KiB RT, copying", ratio(us("rt/channel_hot/65536"), us("rt/socketpair/65536")), "of socketpair", "<= 0.5", lambda r: r <= 0.5),
    ("64 B streaming, frame by frame", ratio(rate("stream64/channel"), rate("stream64/pipe")), "x pipe msg/s", ">= 10", lambda r: r >= 10),
    ("64 B streaming, batched publication", ratio(rate("stream64/channel_batched"), rate("stream64/pipe")), "x pipe msg/s", ">= 10", lambda r: r >= 10),
]
print("\n| target | channel ratio | | goal | result |")
print("|---|---:|---|---|---|")
for name, r, what, goal, ok in targets:
    res = "n/a" if r is None else ("PASS" if ok(r) else "FAIL")
    print(f"| {name} | {fmt(r, 3)} | {what} | {goal} | {res} |")
print(f"\nFor reference: channel hot 64 B RT vs pipe {fmt(ratio(us('rt/channel_hot/64'), us('rt/pipe/64')), 3)}; "
      f"streaming vs socketpair {fmt(ratio(rate('stream64/channel'), rate('stream64/socketpair')), 1)}x.")

idle = med.get("idle_reader")
if idle:
    print(f"\nIdle reader (child blocked in receive, default 20 us spin) over {idle.get('window_s', 0):.0f} s: "
          f"CPU {idle.get('child_cpu_ms', 0):.3f} ms, voluntary context switches {idle.get('child_voluntary_ctxsw', 0):.0f}, "
          f"involuntary {idle.get('child_involuntary_ctxsw', 0):.0f}.")
spins = sorted((v for k, v in med.items() if k.startswith("spin_bound/")), key=lambda v: v.get("spin_us", 0))
if spins:
    print("\nBounded spin (CPU per receive that times out after 1 ms, by spin_policy budget): " +
          ", ".join(f"spin {v.get('spin_us', 0):.0f} us -> {v.get('cpu_us_per_wait', 0):.1f} us CPU" for v in spins) + ".")
print(f"\nCommand: `{command}` (via `bash bench/run_channel.sh`). Host: {data['context'].get('num_cpus')} CPUs, "
      f"load average at start {', '.join(f'{x:.2f}' for x in data['context'].get('load_avg', []))}.")
PY
