#!/usr/bin/env bash
# Installs what tinyFaaS needs to build, run and test on Debian 12 (bookworm).
# Idempotent: packages already present are skipped by apt. Run as root (or
# with sudo available). Why each dependency is there: README.md, "Dependencies".
# With --sanitizers it also installs clang and its runtime libraries (about
# 400 MB, only needed by scripts/test-sanitizers.sh and scripts/fuzz.sh).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

build_packages=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-url1.81-dev
  libcoap3-dev
  libarchive-dev
  nlohmann-json3-dev
  libspdlog-dev
  libcli11-dev
  libtoml11-dev
  libbenchmark-dev
  libgtest-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # HTTP/2 for the gRPC endpoint.
  libnghttp2-dev
  libcurl4-openssl-dev
  # SHA-256. (libssl-dev, which gRPC's CMake package looks for, comes with
  # libgrpc++-dev.)
  nettle-dev
  # The sandbox's seccomp filter.
  libseccomp-dev
  # The durable queue of asynchronous calls (src/async_calls).
  libsqlite3-dev
  # MQTT triggers: the daemon's client session to the broker is Eclipse
  # Paho C's (it sends a QoS 1 PUBACK only when the message callback
  # returns, libmosquitto before calling it); libmosquitto matches topics
  # against filters.
  libpaho-mqtt-dev
  libmosquitto-dev
  # Cluster mode: the NATS JetStream client.
  libnats-dev
)
run_packages=(
  bubblewrap
  # Dependency installs: user-mode networking for the install sandbox (no
  # host loopback), ip to close its routes to the node's own,
  # link-local and private addresses, setpriv (util-linux) to drop
  # CAP_NET_ADMIN before npm or pip runs.
  slirp4netns iproute2 util-linux
  # The system user `tinyfaas-sandbox` is made with adduser (below).
  adduser
  python3 python3-pip
  zip unzip curl
  # Builds go functions at deploy (Debian 12: Go 1.19).
  golang-go
)
test_packages=(
  libcoap3-bin
  python3-pytest
  procps
  docker.io
  python3-grpcio
  dpkg-dev file
  # systemd-analyze rates the packaged unit's hardening (packaging test).
  systemd
  # prlimit: the e2e test of idle connections under a low fd limit.
  util-linux
  # groff and man render the man page in the packaging test.
  groff-base man-db
  # scripts/check-format.sh: the C++ style check (Debian 12's clang-format 14).
  clang-format
  # MQTT trigger tests: a real broker and independent clients.
  mosquitto mosquitto-clients
  # MQTT trigger tests over TLS: the openssl CLI makes a throwaway CA and
  # the broker's certificate.
  openssl
  # Cluster tests: real NATS servers with JetStream.
  nats-server
)

# libFuzzer and clang's ASan/UBSan runtimes.
sanitizer_packages=()
if [ "${1:-}" = "--sanitizers" ]; then sanitizer_packages=(clang libclang-rt-14-dev); fi

missing=()
for p in "${build_packages[@]}" "${run_packages[@]}" "${test_packages[@]}" "${sanitizer_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from Debian or from NodeSource (whose nodejs bundles npm
# and conflicts with Debian's npm package): only install what is absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The uid functions and dependency installs run as (README "Security
# model"): owns nothing, cannot log in.
if ! getent passwd tinyfaas-sandbox >/dev/null; then
  $SUDO adduser --system --group --no-create-home --home /nonexistent --shell /usr/sbin/nologin tinyfaas-sandbox
fi

# aiocoap, an independent CoAP client for the amplification test (no Debian
# package); for the interpreter the tests run with.
if ! /usr/bin/python3 -c 'import aiocoap' 2>/dev/null; then
  $SUDO /usr/bin/python3 -m pip install -q --break-system-packages aiocoap==0.4.17
fi
