#!/usr/bin/env bash
# Installs the Debian 12 packages procsup needs to build, test and benchmark.
# Idempotent: installs only what is missing, and runs `apt-get update` once, only then.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libboost1.81-dev             # Boost.Interprocess (benchmark baseline only)
  libspdlog-dev libfmt-dev     # logging (synchronous sinks)
  libtomlplusplus-dev          # config
  libcli11-dev                 # command line
  nlohmann-json3-dev           # JSON codec, control protocol
  libgtest-dev libgmock-dev    # tests
  libbenchmark-dev             # benchmarks
  clang libclang-rt-14-dev     # libFuzzer target
  util-linux procps            # unshare, ps (PID-1 and process tests)
  dpkg-dev file                # cpack -G DEB (dpkg-shlibdeps) and its test
  systemd redis-server         # services tests: the real systemd-notify and an sd_notify daemon (its own service is not started: policy-rc.d)
  libcpp-httplib-dev           # HTTP probes and health checks (probe.cpp)
  prometheus                   # promtool check metrics + a real server scraping procsup (tests)
  python3-yaml                 # the Kubernetes manifest test
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages and not root; run as root or install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # The prometheus package ships a service: it must not start here (the tests run their own
  # server on a temp TSDB). A policy-rc.d that forbids starts, for this install only.
  own_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [[ -n $own_policy ]] && rm -f /usr/sbin/policy-rc.d
  # On a host booted with systemd: not at boot either.
  if [[ -d /run/systemd/system ]] && systemctl list-unit-files prometheus.service >/dev/null 2>&1; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
else
  echo "setup: all packages present"
fi
