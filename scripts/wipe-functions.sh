#!/bin/bash
# wipe-functions.sh: removes all functions. Talks to $TINYFAAS_MANAGEMENT_URL
# (default http://localhost:8080).

set -e -o pipefail

if ! command -v curl &> /dev/null; then
    echo "curl could not be found but is a pre-requisite for this script" >&2
    exit 1
fi

url="${TINYFAAS_MANAGEMENT_URL:-http://localhost:8080}"
url="${url%/}"

out=$(curl -sS -X POST -w '\n%{http_code}' "$url/wipe")

code=${out##*$'\n'}
body=${out%$'\n'*}
body=${body%$'\n'}
if [ "$code" -ge 200 ] 2> /dev/null && [ "$code" -lt 300 ]; then
    [ -z "$body" ] || printf '%s\n' "$body"
else
    echo "wipe failed (HTTP $code): $body" >&2
    exit 1
fi
