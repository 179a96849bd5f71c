#!/usr/bin/env bash
# The README's test command: install what is missing, build (release preset), run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --workflow --preset release
