#!/bin/bash
# delete.sh NAME: removes function NAME. Talks to $TINYFAAS_MANAGEMENT_URL
# (default http://localhost:8080).

set -e -o pipefail

if ! command -v curl &> /dev/null; then
    echo "curl could not be found but is a pre-requisite for this script" >&2
    exit 1
fi

if [ "$#" -lt 1 ]; then
    echo "usage: $0 NAME" >&2
    exit 1
fi

url="${TINYFAAS_MANAGEMENT_URL:-http://localhost:8080}"
url="${url%/}"

json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    printf '"%s"' "$s"
}

out=$(
    printf '{"name": %s}' "$(json_str "$1")" |
        curl -sS -H 'Content-Type: application/json' --data-binary @- \
            -w '\n%{http_code}' "$url/delete"
)

code=${out##*$'\n'}
body=${out%$'\n'*}
body=${body%$'\n'}
if [ "$code" -ge 200 ] 2> /dev/null && [ "$code" -lt 300 ]; then
    [ -z "$body" ] || printf '%s\n' "$body"
else
    echo "delete failed (HTTP $code): $body" >&2
    exit 1
fi
