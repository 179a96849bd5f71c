#!/usr/bin/env bash
# Peer benchmark: procsup vs supervisord, runit (runsvdir) and s6 (s6-svscan), with a bare
# posix_spawn/waitpid loop (bare.c) as the floor column.
#
#   bench/peers/run.sh [--quick] [--idle SECONDS] [--kills N] [--sizes 100,1000]
#                      [--only bare,supervisord,runit,s6,procsup,procsup_nocg] [--procsup PATH] [--no-build]
#                      [--no-install] [--out FILE] [--keep-tmp] [--procsup-old PATH]
#   --procsup-old PATH: a second procsup binary (say main's, before a change), measured in the
#   same run (columns procsup_old, procsup_old_nocg; select them with --only as well)
#   --restart-all-sizes: restart latency at every size of --sizes, not only the first
#
# Installs supervisor, runit, s6, gnuplot-nox from Debian if missing (never starting their
# services), builds procsup (release preset) if no binary is found, compiles the tiny child
# program (child.c) and the floor supervisor (bare.c), and runs harness.py, which prints one
# markdown table, writes bench/peers/RESULTS.md and bench/peers/restart_latency.png. Every
# process it starts is stopped on exit, Ctrl-C or failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CMDLINE="bench/peers/run.sh${*:+ $*}"

NO_INSTALL=0 NO_BUILD=0 PROCSUP_BIN="${PROCSUP:-}" KEEP_TMP=0
HARNESS_ARGS=()
while (($#)); do
  case "$1" in
    --no-install) NO_INSTALL=1 ;;
    --no-build) NO_BUILD=1 ;;
    --keep-tmp) KEEP_TMP=1 ;;
    --procsup) PROCSUP_BIN="$2"; shift ;;
    --procsup=*) PROCSUP_BIN="${1#*=}" ;;
    --quick|--restart-all-sizes) HARNESS_ARGS+=("$1") ;;
    --idle|--kills|--sizes|--only|--out|--crash-budget|--timeout|--procsup-layout|--procsup-old)
      HARNESS_ARGS+=("$1" "$2"); shift ;;
    --*=*) HARNESS_ARGS+=("$1") ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[peers] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- cleanup (trap)
WORK="$(mktemp -d /tmp/procsup-peers.XXXXXX)"
HARNESS_PID=""
OUR_POLICY=0
POLICY=/usr/sbin/policy-rc.d

# Every process that belongs to this run: exe, cwd or command line under $WORK. Listed by pid,
# so nothing of anyone else's is touched.
our_pids() {
  python3 - "$WORK" "$$" <<'PY' 2>/dev/null || true
import os, sys
work, me = sys.argv[1], {sys.argv[2], str(os.getpid()), str(os.getppid())}
for p in os.listdir("/proc"):
    if not p.isdigit() or p in me:
        continue
    try:
        exe = os.readlink(f"/proc/{p}/exe")
    except OSError:
        exe = ""
    try:
        cwd = os.readlink(f"/proc/{p}/cwd")
    except OSError:
        cwd = ""
    try:
        cmd = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmd = ""
    if exe.startswith(work + "/") or cwd == work or cwd.startswith(work + "/") or (work + "/") in cmd:
        print(p)
PY
}

cleanup() {
  local rc=$? left
  trap - EXIT INT TERM HUP
  if [[ -n "$HARNESS_PID" ]] && kill -0 "$HARNESS_PID" 2>/dev/null; then
    kill -TERM "$HARNESS_PID" 2>/dev/null || true       # the harness stops its supervisors
    for _ in $(seq 1 100); do kill -0 "$HARNESS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$HARNESS_PID" 2>/dev/null || true
  fi
  left="$(our_pids | tr '\n' ' ')"
  if [[ -n "${left// /}" ]]; then
    log "killing leftover processes: $left"
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    sleep 0.3
  fi
  if ((OUR_POLICY)); then rm -f "$POLICY"; fi
  if [[ -f "$WORK/policy-rc.d.saved" ]]; then mv -f "$WORK/policy-rc.d.saved" "$POLICY"; fi
  left="$(our_pids | tr '\n' ' ')"
  # Final check with pgrep: no supervisor of ours may be left.
  local stray=""
  for name in bare supervisord runsvdir runsv s6-svscan s6-supervise procsup peerchild; do
    for p in $(pgrep -x "$name" 2>/dev/null || true); do
      if [[ " $left " == *" $p "* ]]; then stray+=" $name:$p"; fi
    done
  done
  if [[ -n "$stray" || -n "${left// /}" ]]; then
    log "WARNING: processes still running: ${stray:-$left}"
  else
    log "cleanup: nothing left running"
  fi
  if ((KEEP_TMP)); then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------- install (idempotent)
PKGS=(supervisor runit s6 gnuplot-nox python3)
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

daemon_pids() { local n; for n in supervisord runsvdir s6-svscan; do pgrep -x "$n" || true; done; }

install_peers() {
  local missing=() p
  for p in "${PKGS[@]}"; do
    if [[ "$p" == gnuplot-nox ]] && command -v gnuplot >/dev/null; then continue; fi
    have_pkg "$p" || missing+=("$p")
  done
  ((${#missing[@]})) || { log "packages present: ${PKGS[*]}"; return 0; }
  if ((NO_INSTALL)); then log "missing packages (not installing, --no-install): ${missing[*]}"; return 0; fi
  if [[ $(id -u) -ne 0 ]]; then log "missing packages and not root: ${missing[*]}"; return 0; fi
  log "installing: ${missing[*]}"
  # Never let a package start its daemon (or touch init) while we install it.
  if [[ -e "$POLICY" ]]; then
    local rc=0; "$POLICY" supervisor start >/dev/null 2>&1 || rc=$?
    if [[ $rc -ne 101 ]]; then cp -p "$POLICY" "$WORK/policy-rc.d.saved"; OUR_POLICY=1; fi
  else
    OUR_POLICY=1
  fi
  if ((OUR_POLICY)); then printf '#!/bin/sh\nexit 101\n' >"$POLICY"; chmod 755 "$POLICY"; fi
  local before; before=" $(daemon_pids | tr '\n' ' ') "
  # apt-get update only when apt cannot find a package.
  if ! apt-get install -s --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    log "apt-get update"
    timeout 600 apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >&2
  # Policy back as it was (the trap does this too).
  if ((OUR_POLICY)); then rm -f "$POLICY"; OUR_POLICY=0; fi
  if [[ -f "$WORK/policy-rc.d.saved" ]]; then mv -f "$WORK/policy-rc.d.saved" "$POLICY"; fi
  # A package's own daemon that got started anyway (no policy honoured): stop it, by pid.
  for p in $(daemon_pids); do
    if [[ "$before" != *" $p "* ]]; then
      log "stopping daemon started by the install: $(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null) (pid $p)"
      kill -TERM "$p" 2>/dev/null || true
    fi
  done
}
install_peers

# ---------------------------------------------------------------- procsup binary
find_procsup() {
  local c
  for c in "$PROCSUP_BIN" "$REPO/build/release/daemon/procsup" "$REPO/build/h-peers/daemon/procsup"; do
    [[ -n "$c" && -x "$c" ]] && { realpath "$c"; return 0; }
  done
  return 1
}
PS_FOUND="$(find_procsup || true)"
if [[ -z "$PS_FOUND" && -n "$PROCSUP_BIN" ]]; then
  log "--procsup $PROCSUP_BIN: not an executable"
elif [[ -z "$PS_FOUND" && $NO_BUILD -eq 0 && -f "$REPO/daemon/CMakeLists.txt" ]]; then
  log "procsup not built: building it (cmake --preset release), output in $WORK/build.log"
  if (cd "$REPO" && timeout 1500 cmake --preset release >"$WORK/build.log" 2>&1 &&
      timeout 1500 cmake --build --preset release --target procsup >>"$WORK/build.log" 2>&1); then
    PS_FOUND="$(find_procsup || true)"
  else
    log "procsup build failed (tail of the log):"; tail -n 15 "$WORK/build.log" >&2 || true
  fi
fi
[[ -n "$PS_FOUND" ]] && log "procsup: $PS_FOUND" || log "procsup: not available, its column will say n/a"

# ---------------------------------------------------------------- child program, bare loop
CC_BIN="$(command -v cc || command -v gcc || command -v clang)"
if ! "$CC_BIN" -O2 -static -o "$WORK/peerchild" "$HERE/child.c" 2>/dev/null; then
  "$CC_BIN" -O2 -o "$WORK/peerchild" "$HERE/child.c"
fi
# The floor column. Lives in $WORK like the child, so the trap's sweep finds it by exe.
BARE_BIN="$WORK/bare"
if ! "$CC_BIN" -O2 -o "$BARE_BIN" "$HERE/bare.c"; then
  log "bare.c did not compile: its column will say n/a"
  BARE_BIN=""
fi

# ---------------------------------------------------------------- run
python3 "$HERE/harness.py" --work "$WORK" --child "$WORK/peerchild" --bare "$BARE_BIN" \
  --procsup "${PS_FOUND:-}" --repo "$REPO" --cmdline "$CMDLINE" \
  --results "$HERE/RESULTS.md" --plot "$HERE/restart_latency.png" --gnuplot-script "$HERE/latency.gp" \
  "${HARNESS_ARGS[@]}" &
HARNESS_PID=$!
wait "$HARNESS_PID"
