#!/bin/bash
# logs.sh [NAME]: the function handlers' logs, of all functions or of NAME
# only. Talks to $TINYFAAS_MANAGEMENT_URL (default http://localhost:8080)
# with $TINYFAAS_TOKEN as bearer token when set.

set -e -o pipefail

. "$(dirname "$0")/lib/management.sh"

args=()
if [ "$#" -ge 1 ] && [ -n "$1" ]; then
    args=(-G --data-urlencode "name=$1")
fi

out=$(tf_curl -sS -w '\n%{http_code}' "${args[@]}" "$url/logs")

report logs "$out"
