#!/bin/bash
# wipe-functions.sh: removes all functions. Talks to $TINYFAAS_MANAGEMENT_URL
# (default http://localhost:8080).

set -e -o pipefail

. "$(dirname "$0")/lib/management.sh"

out=$(tf_curl -sS -X POST -w '\n%{http_code}' "$url/wipe")

report wipe "$out"
