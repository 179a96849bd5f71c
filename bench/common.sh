# Sourced by bench/run_*.sh: builds a benchmark program and runs it with repetitions.
#   bench_run TARGET [extra benchmark flags]
# Builds TARGET (the release preset in build/release, or $BUILD_DIR configured RelWithDebInfo),
# runs it with $REPS repetitions of at least $MIN_TIME s each, progress to stderr, and leaves the
# JSON in $out and the command as shown in the README (output file as FILE) in $shown.
BUILD_DIR=${BUILD_DIR:-build/release}
REPS=${REPS:-5}
MIN_TIME=${MIN_TIME:-0.2}

bench_run() {
  local target=$1
  shift
  if [[ "$BUILD_DIR" == build/release ]]; then
    [[ -f build/release/build.ninja ]] || cmake --preset release >&2
    cmake --build --preset release --target "$target" >&2
  else
    [[ -f "$BUILD_DIR/build.ninja" ]] || cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
    cmake --build "$BUILD_DIR" --target "$target" -j2 >&2
  fi
  out="$BUILD_DIR/$target.json"  # kept: the raw figures behind the table
  local cmd=("$BUILD_DIR/bench/$target" "--benchmark_repetitions=$REPS" "--benchmark_min_time=$MIN_TIME"
             "--benchmark_report_aggregates_only=true" "--benchmark_out=$out" "--benchmark_out_format=json" "$@")
  echo "+ PROCSUP_BENCH_IDLE_SECONDS=$PROCSUP_BENCH_IDLE_SECONDS ${cmd[*]}" >&2
  "${cmd[@]}" >&2
  shown="PROCSUP_BENCH_IDLE_SECONDS=$PROCSUP_BENCH_IDLE_SECONDS ${cmd[*]/--benchmark_out=$out/--benchmark_out=FILE}"
}
