#!/bin/bash
# upload.sh FOLDER NAME ENV THREADS [KEY=VALUE ...]
#
# Zips FOLDER and deploys it as function NAME with runtime ENV (python3,
# nodejs, binary or go) and THREADS handler instances. Extra KEY=VALUE arguments
# become the function's environment variables. Uploading an existing NAME
# replaces it. Talks to $TINYFAAS_MANAGEMENT_URL (default http://localhost:8080)
# with $TINYFAAS_TOKEN as bearer token when set.

set -e -o pipefail

for tool in curl zip base64; do
    if ! command -v "$tool" &> /dev/null; then
        echo "$tool could not be found but is a pre-requisite for this script" >&2
        exit 1
    fi
done

if [ "$#" -lt 4 ]; then
    echo "usage: $0 FOLDER NAME ENV THREADS [KEY=VALUE ...]" >&2
    exit 1
fi
case "$4" in
    ''|*[!0-9]*) echo "THREADS must be a positive integer, got '$4'" >&2; exit 1 ;;
esac

folder=$1 name=$2 env=$3 threads=$4
shift 4
. "$(dirname "$0")/lib/management.sh"

envs=""
for kv in "$@"; do
    envs="${envs:+$envs,}$(json_str "$kv")"
done

pushd "$folder" > /dev/null

# The JSON goes to curl on stdin, not as an argument: a base64 zip of a
# function with dependencies easily exceeds the kernel's argument size limit.
out=$(
    {
        printf '{"name": %s, "env": %s, "threads": %s, "envs": [%s], "zip": "' \
            "$(json_str "$name")" "$(json_str "$env")" "$threads" "$envs"
        zip -q -r - ./* | base64 | tr -d '\n'
        printf '"}'
    } | tf_curl -sS -H 'Content-Type: application/json' --data-binary @- \
        -w '\n%{http_code}' "$url/upload"
)

popd > /dev/null

report upload "$out"
