# Shared by the upstream-compatible management scripts (sourced, not run):
# the management URL, the optional token, JSON string quoting and reply
# handling.

if ! command -v curl &> /dev/null; then
    echo "curl could not be found but is a pre-requisite for this script" >&2
    exit 1
fi

url="${TINYFAAS_MANAGEMENT_URL:-http://localhost:8080}"
url="${url%/}"

# curl with TINYFAAS_TOKEN, when set, as a bearer token. The header comes
# from a file descriptor, so the token never shows in the process list.
tf_curl() {
    if [ -n "${TINYFAAS_TOKEN:-}" ]; then
        curl -H @<(printf 'Authorization: Bearer %s\n' "$TINYFAAS_TOKEN") "$@"
    else
        curl "$@"
    fi
}

json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    printf '"%s"' "$s"
}

# report WHAT OUT: OUT is curl's output with `-w '\n%{http_code}'` appended.
# Prints the body on success; otherwise the daemon's reason, and exits 1.
report() {
    local what=$1 out=$2
    local code=${out##*$'\n'}
    local body=${out%$'\n'*}
    body=${body%$'\n'}
    if [ "$code" -ge 200 ] 2> /dev/null && [ "$code" -lt 300 ]; then
        [ -z "$body" ] || printf '%s\n' "$body"
    else
        echo "$what failed (HTTP $code): $body" >&2
        exit 1
    fi
}
