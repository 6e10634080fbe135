#!/bin/bash
# list.sh: names of the deployed functions, one per line. Talks to
# $TINYFAAS_MANAGEMENT_URL (default http://localhost:8080).

set -e -o pipefail

if ! command -v curl &> /dev/null; then
    echo "curl could not be found but is a pre-requisite for this script" >&2
    exit 1
fi

url="${TINYFAAS_MANAGEMENT_URL:-http://localhost:8080}"
url="${url%/}"

out=$(curl -sS -w '\n%{http_code}' "$url/list")

code=${out##*$'\n'}
body=${out%$'\n'*}
body=${body%$'\n'}
if [ "$code" -ge 200 ] 2> /dev/null && [ "$code" -lt 300 ]; then
    [ -z "$body" ] || printf '%s\n' "$body"
else
    echo "list failed (HTTP $code): $body" >&2
    exit 1
fi
