#!/bin/bash
# list.sh: names of the deployed functions, one per line. Talks to
# $TINYFAAS_MANAGEMENT_URL (default http://localhost:8080)
# with $TINYFAAS_TOKEN as bearer token when set.

set -e -o pipefail

. "$(dirname "$0")/lib/management.sh"

out=$(tf_curl -sS -w '\n%{http_code}' "$url/list")

report list "$out"
