#!/usr/bin/env bash
# Runs bench_supervisor and prints the issue-3 table: medians, ratios against the baselines
# measured in the same run, and pass/fail per target.
#   bash bench/run_supervisor.sh                    # release preset build (build/release)
#   BUILD_DIR=build/mine bash bench/run_supervisor.sh
#   REPS=5 MIN_TIME=0.2 PROCSUP_BENCH_IDLE_SECONDS=3 bash bench/run_supervisor.sh [extra benchmark flags]
set -euo pipefail
cd "$(dirname "$0")/.."
export PROCSUP_BENCH_IDLE_SECONDS=${PROCSUP_BENCH_IDLE_SECONDS:-3}
source bench/common.sh
bench_run bench_supervisor "$@"

python3 - "$out" "$shown" <<'PY'
import sys
sys.path.insert(0, "bench")
from bench_json import load, ratio
import bench_json
data, med = load(sys.argv[1])
command = sys.argv[2]
def us(name): return bench_json.us(med, name)
def counter(name, key): return bench_json.counter(med, name, key)
def rate(name): return bench_json.rate(med, name)
def fmt(v, digits=2):
    return "n/a" if v is None else f"{v:,.{digits}f}"

reps = max((b.get("repetitions", 1) for b in data["benchmarks"]), default=1)
restart, fork = us("restart/supervised"), us("restart/fork_waitpid")
rt, rt_sock, rt_chan = us("rt/send_get/64"), us("rt/socketpair/64"), us("rt/channel/64")
pipe, pipe_sock, loop_sock = rate("pipelined/send_get"), rate("pipelined/socketpair"), rate("rt/socketpair/64")
spawn1000, stop1000 = counter("lifecycle/1000", "spawn_ms"), counter("lifecycle/1000", "stop_ms")
many1000 = counter("lifecycle_many/1000", "spawn_ms")
big_restart, big_fork = us("big_parent/restart/supervised"), us("big_parent/restart/fork_waitpid")
idle = med.get("idle/children/100")

print(f"Medians of {reps} repetitions (wall time); baselines measured in the same run.\n")
print("| measure | procsup | baseline | ratio |")
print("|---|---:|---:|---:|")
print(f"| restart latency: crash -> first reply of the new instance (us) | {fmt(restart, 0)} | fork+waitpid {fmt(fork, 0)} | {fmt(ratio(restart, fork))}x |")
print(f"| send().get() round trip, 64 B, one caller (us) | {fmt(rt, 2)} | socketpair RT {fmt(rt_sock, 2)} | {fmt(ratio(rt, rt_sock), 3)} |")
print(f"| send().get() vs the raw ipc channel (us) | {fmt(rt, 2)} | channel RT {fmt(rt_chan, 2)} | {fmt(ratio(rt, rt_chan))}x |")
print(f"| pipelined request/reply, 256 in flight (k msg/s) | {fmt(pipe and pipe / 1e3, 0)} | socketpair RT loop {fmt(loop_sock and loop_sock / 1e3, 0)} | {fmt(ratio(pipe, loop_sock), 1)}x |")
print(f"| pipelined, reference: socketpair pipelined 256 (k msg/s) | | {fmt(pipe_sock and pipe_sock / 1e3, 0)} | {fmt(ratio(pipe, pipe_sock), 1)}x |")
for n in (1, 100, 1000):
    print(f"| spawn() {n:,} children one by one / stop them (ms) | {fmt(counter(f'lifecycle/{n}', 'spawn_ms'), 1)} / {fmt(counter(f'lifecycle/{n}', 'stop_ms'), 1)} | | |")
for n in (100, 1000):
    print(f"| spawn_many({n:,}) / stop them (ms) | {fmt(counter(f'lifecycle_many/{n}', 'spawn_ms'), 1)} / {fmt(counter(f'lifecycle_many/{n}', 'stop_ms'), 1)} | | |")
ex0, ex3k = us("launch/exec/fds/0"), us("launch/exec/fds/3000")
ps0, ps3k = us("launch/posix_spawn/fds/0"), us("launch/posix_spawn/fds/3000")
print(f"| launch_exec of /bin/true, none / 3,000 fds open in the parent (us) | {fmt(ex0, 0)} / {fmt(ex3k, 0)} ({fmt(ratio(ex3k, ex0))}x) | posix_spawn {fmt(ps0, 0)} / {fmt(ps3k, 0)} ({fmt(ratio(ps3k, ps0))}x) | {fmt(ratio(ex3k, ps3k))}x |")
print(f"| 200 MB parent: restart latency (us) | {fmt(big_restart, 0)} | fork+waitpid {fmt(big_fork, 0)} | {fmt(ratio(big_restart, big_fork))}x |")
if idle:
    w = idle.get("window_s", 0)
    print(f"| idle supervisor, {idle.get('children', 0):.0f} children, {w:.0f} s: CPU (ms) / wake-ups / timers | "
          f"{idle.get('supervisor_cpu_ms', 0):.3f} / {idle.get('supervisor_voluntary_ctxsw', 0):.0f} / {idle.get('timers', 0):.0f} | "
          f"children's CPU {idle.get('children_cpu_ms', 0):.1f} ms | |")

targets = [
    ("restart latency median", restart, "<= 1,000 us", lambda: restart <= 1000, fmt(restart, 0) + " us"),
    ("restart latency vs fork+waitpid", ratio(restart, fork), "<= 5x", lambda: ratio(restart, fork) <= 5, fmt(ratio(restart, fork)) + "x"),
    ("send().get() RT vs socketpair RT", ratio(rt, rt_sock), "<= 0.2 (1/5)", lambda: ratio(rt, rt_sock) <= 0.2, fmt(ratio(rt, rt_sock), 3)),
    ("pipelined vs socketpair RT loop", ratio(pipe, loop_sock), ">= 5x", lambda: ratio(pipe, loop_sock) >= 5, fmt(ratio(pipe, loop_sock), 1) + "x"),
    ("start 1,000 children, spawn() one by one", spawn1000, "< 1,000 ms", lambda: spawn1000 < 1000, fmt(spawn1000, 0) + " ms"),
    ("start 1,000 children, spawn_many()", many1000, "< 1,000 ms", lambda: many1000 < 1000, fmt(many1000, 0) + " ms"),
    ("stop 1,000 children", stop1000, "< 1,000 ms", lambda: stop1000 < 1000, fmt(stop1000, 0) + " ms"),
]
if idle:
    # "No CPU while idle": no timer armed, and under 0.1% of one core (1 ms per second of window).
    cpu, w, timers = idle.get("supervisor_cpu_ms", 0), idle.get("window_s", 1), idle.get("timers", 0)
    targets.append(("idle supervisor: no timers, ~no CPU", cpu, "0 timers, < 1 ms CPU/s",
                     lambda: timers == 0 and cpu < w, f"{timers:.0f} timers, {cpu:.3f} ms in {w:.0f} s"))
print("\n| target | measured | goal | result |")
print("|---|---:|---|---|")
for name, value, goal, ok, shown in targets:
    res = "n/a" if value is None else ("PASS" if ok() else "FAIL")
    print(f"| {name} | {shown} | {goal} | {res} |")
print(f"\nCommand: `{command}` (via `bash bench/run_supervisor.sh`). Host: {data['context'].get('num_cpus')} CPUs, "
      f"load average at start {', '.join(f'{x:.2f}' for x in data['context'].get('load_avg', []))}.")
PY
