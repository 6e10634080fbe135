#!/bin/bash
# uploadURL.sh URL SUBFOLDER NAME ENV THREADS [KEY=VALUE ...]
#
# Deploys function NAME from the zip archive at URL, using the folder
# SUBFOLDER inside it as the function's code. Talks to
# $TINYFAAS_MANAGEMENT_URL (default http://localhost:8080)
# with $TINYFAAS_TOKEN as bearer token when set.

set -e -o pipefail

if [ "$#" -lt 5 ]; then
    echo "usage: $0 URL SUBFOLDER NAME ENV THREADS [KEY=VALUE ...]" >&2
    exit 1
fi
case "$5" in
    ''|*[!0-9]*) echo "THREADS must be a positive integer, got '$5'" >&2; exit 1 ;;
esac

src=$1 subfolder=$2 name=$3 env=$4 threads=$5
shift 5
. "$(dirname "$0")/lib/management.sh"

envs=""
for kv in "$@"; do
    envs="${envs:+$envs,}$(json_str "$kv")"
done

out=$(
    printf '{"name": %s, "env": %s, "threads": %s, "url": %s, "subfolder_path": %s, "envs": [%s]}' \
        "$(json_str "$name")" "$(json_str "$env")" "$threads" "$(json_str "$src")" \
        "$(json_str "$subfolder")" "$envs" |
        tf_curl -sS -H 'Content-Type: application/json' --data-binary @- \
            -w '\n%{http_code}' "$url/uploadURL"
)

report uploadURL "$out"
