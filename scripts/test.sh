#!/usr/bin/env bash
# The README's test command: install what is missing, build, run every test.
#   bash scripts/test.sh            release build + all tests
#   bash scripts/test.sh --asan     also the ASan+UBSan build + all tests (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --workflow --preset release
if [[ "${1:-}" == "--asan" ]]; then
  cmake --workflow --preset asan
fi
