#!/bin/sh
# http_status.sh — mon-compatible monitor: does a URL answer with the expected HTTP status?
#
# Usage: http_status.sh URL [EXPECTED_STATUS] [TIMEOUT_SECONDS]
#   URL              http:// or https:// URL
#   EXPECTED_STATUS  status code that counts as healthy, default 200
#   TIMEOUT_SECONDS  whole-request timeout, default 5
#
# Exit 0 when the status matches, 1 otherwise (other status, refused, timeout), 2 on bad
# arguments. First stdout line: summary. Uses curl, else wget.
set -u
url=${1:-}
expect=${2:-200}
timeout=${3:-5}
if [ -z "$url" ]; then
    echo "usage: http_status.sh URL [EXPECTED_STATUS] [TIMEOUT_SECONDS]"
    exit 2
fi
case $expect in
    [1-5][0-9][0-9]) ;;
    *) echo "bad expected status: $expect"; exit 2 ;;
esac
case $timeout in
    ''|*[!0-9]*) echo "bad timeout: $timeout"; exit 2 ;;
esac

if command -v curl >/dev/null 2>&1; then
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time "$timeout" "$url" 2>/dev/null)
elif command -v wget >/dev/null 2>&1; then
    status=$(wget -q -S -O /dev/null -T "$timeout" -t 1 "$url" 2>&1 | awk '/^  HTTP\//{c=$2} END{print c}')
else
    echo "no HTTP client (curl or wget) found"
    exit 2
fi
[ -z "$status" ] && status=000
if [ "$status" = "$expect" ]; then
    echo "http $url status $status"
    exit 0
fi
if [ "$status" = "000" ]; then
    echo "http $url no answer"
else
    echo "http $url status $status, expected $expect"
fi
exit 1
