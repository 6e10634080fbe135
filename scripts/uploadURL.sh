#!/bin/bash
# uploadURL.sh URL SUBFOLDER NAME ENV THREADS [KEY=VALUE ...]
#
# Deploys function NAME from the zip archive at URL, using the folder
# SUBFOLDER inside it as the function's code. Talks to
# $TINYFAAS_MANAGEMENT_URL (default http://localhost:8080).

set -e -o pipefail

if ! command -v curl &> /dev/null; then
    echo "curl could not be found but is a pre-requisite for this script" >&2
    exit 1
fi

if [ "$#" -lt 5 ]; then
    echo "usage: $0 URL SUBFOLDER NAME ENV THREADS [KEY=VALUE ...]" >&2
    exit 1
fi
case "$5" in
    ''|*[!0-9]*) echo "THREADS must be a positive integer, got '$5'" >&2; exit 1 ;;
esac

src=$1 subfolder=$2 name=$3 env=$4 threads=$5
shift 5
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

envs=""
for kv in "$@"; do
    envs="${envs:+$envs,}$(json_str "$kv")"
done

out=$(
    printf '{"name": %s, "env": %s, "threads": %s, "url": %s, "subfolder_path": %s, "envs": [%s]}' \
        "$(json_str "$name")" "$(json_str "$env")" "$threads" "$(json_str "$src")" \
        "$(json_str "$subfolder")" "$envs" |
        curl -sS -H 'Content-Type: application/json' --data-binary @- \
            -w '\n%{http_code}' "$url/uploadURL"
)

code=${out##*$'\n'}
body=${out%$'\n'*}
body=${body%$'\n'}
if [ "$code" -ge 200 ] 2> /dev/null && [ "$code" -lt 300 ]; then
    [ -z "$body" ] || printf '%s\n' "$body"
else
    echo "uploadURL failed (HTTP $code): $body" >&2
    exit 1
fi
