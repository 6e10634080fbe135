#!/bin/bash
# delete.sh NAME: removes function NAME. Talks to $TINYFAAS_MANAGEMENT_URL
# (default http://localhost:8080).

set -e -o pipefail

if [ "$#" -lt 1 ]; then
    echo "usage: $0 NAME" >&2
    exit 1
fi

. "$(dirname "$0")/lib/management.sh"

out=$(
    printf '{"name": %s}' "$(json_str "$1")" |
        tf_curl -sS -H 'Content-Type: application/json' --data-binary @- \
            -w '\n%{http_code}' "$url/delete"
)

report delete "$out"
