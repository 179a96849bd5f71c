#!/usr/bin/env bash
# The README's first command: install what is missing, build (release), and run `procsup run`
# with the built-in demo until Ctrl-C. Extra arguments go to `procsup run`, e.g.
#   bash scripts/demo.sh --exit-after 20s
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target procsup_bin
exec ./build/release/daemon/procsup run "$@"
