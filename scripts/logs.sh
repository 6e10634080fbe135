#!/bin/bash
# logs.sh [NAME]: the function handlers' logs, of all functions or of NAME
# only. Talks to $TINYFAAS_MANAGEMENT_URL (default http://localhost:8080).

set -e -o pipefail

if ! command -v curl &> /dev/null; then
    echo "curl could not be found but is a pre-requisite for this script" >&2
    exit 1
fi

url="${TINYFAAS_MANAGEMENT_URL:-http://localhost:8080}"
url="${url%/}"

args=()
if [ "$#" -ge 1 ] && [ -n "$1" ]; then
    args=(-G --data-urlencode "name=$1")
fi

out=$(curl -sS -w '\n%{http_code}' "${args[@]}" "$url/logs")

code=${out##*$'\n'}
body=${out%$'\n'*}
body=${body%$'\n'}
if [ "$code" -ge 200 ] 2> /dev/null && [ "$code" -lt 300 ]; then
    [ -z "$body" ] || printf '%s\n' "$body"
else
    echo "logs failed (HTTP $code): $body" >&2
    exit 1
fi
