#!/bin/sh
# tcp_port.sh — mon-compatible monitor: does a TCP port accept connections?
#
# Usage: tcp_port.sh HOST PORT [TIMEOUT_SECONDS]
#   HOST             address or name to connect to
#   PORT             TCP port (1-65535)
#   TIMEOUT_SECONDS  connect timeout, default 3
#
# Exit 0 when the connection is accepted, 1 when refused or timed out, 2 on bad arguments.
# First stdout line: summary; further lines: detail. Uses nc, socat or bash (first found).
set -u
host=${1:-}
port=${2:-}
timeout=${3:-3}
if [ -z "$host" ] || [ -z "$port" ]; then
    echo "usage: tcp_port.sh HOST PORT [TIMEOUT_SECONDS]"
    exit 2
fi
case $port in
    ''|*[!0-9]*) echo "bad port: $port"; exit 2 ;;
esac
case $timeout in
    ''|*[!0-9]*) echo "bad timeout: $timeout"; exit 2 ;;
esac

if command -v nc >/dev/null 2>&1; then
    out=$(nc -z -w "$timeout" "$host" "$port" 2>&1)
elif command -v socat >/dev/null 2>&1; then
    out=$(socat -T "$timeout" /dev/null "TCP:$host:$port,connect-timeout=$timeout" 2>&1)
elif command -v bash >/dev/null 2>&1; then
    out=$(timeout "$timeout" bash -c "exec 3<>/dev/tcp/$host/$port" 2>&1)
else
    echo "no TCP client (nc, socat or bash) found"
    exit 2
fi
rc=$?
if [ "$rc" -eq 0 ]; then
    echo "tcp $host:$port open"
    exit 0
fi
echo "tcp $host:$port not reachable"
[ -n "$out" ] && echo "$out"
exit 1
