#!/usr/bin/env bash
# Starts the Docker engine if it is not answering yet (CI machines and fresh
# hosts have no init system running it), and waits until it does.
set -euo pipefail
socket=${DOCKER_HOST:-}
socket=${socket#unix://}
socket=${socket:-/var/run/docker.sock}
ping() { curl -sf --max-time 2 --unix-socket "$socket" http://docker/_ping >/dev/null 2>&1; }
if ping; then exit 0; fi
if ! command -v dockerd >/dev/null; then
  echo "dockerd is not installed (apt-get install docker.io)" >&2
  exit 1
fi
log=${TMPDIR:-/tmp}/tinyfaas-dockerd.log
echo "starting dockerd (log: $log)"
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 1 60); do
  if ping; then exit 0; fi
  sleep 0.5
done
echo "dockerd did not answer on $socket within 30 s; last log lines:" >&2
tail -n 20 "$log" >&2
exit 1
