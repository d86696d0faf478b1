#!/bin/sh
# process_alive.sh — mon-compatible monitor: is a process running?
#
# Usage: process_alive.sh -p PIDFILE     the process whose pid is in PIDFILE
#        process_alive.sh -n NAME        at least one process whose name (comm) is NAME
#
# Exit 0 when the process is alive (zombies count as dead), 1 otherwise, 2 on bad arguments.
# First stdout line: summary; for -n the detail lists the matching pids. Linux /proc only.
set -u
mode=${1:-}
arg=${2:-}
if [ -z "$arg" ] || { [ "$mode" != "-p" ] && [ "$mode" != "-n" ]; }; then
    echo "usage: process_alive.sh -p PIDFILE | -n NAME"
    exit 2
fi

alive() {
    # $1 = pid; alive when /proc/PID exists and its state is not Z (zombie) or X (dead)
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

if [ "$mode" = "-p" ]; then
    if [ ! -r "$arg" ]; then
        echo "pidfile $arg not readable"
        exit 1
    fi
    pid=$(head -n 1 "$arg" | tr -d ' \t\r')
    case $pid in
        ''|*[!0-9]*) echo "pidfile $arg holds no pid"; exit 1 ;;
    esac
    if alive "$pid"; then
        echo "process $pid (from $arg) alive"
        exit 0
    fi
    echo "process $pid (from $arg) not running"
    exit 1
fi

pids=""
for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$(cat "$d/comm" 2>/dev/null)" = "$arg" ] || continue
    alive "$p" && pids="$pids $p"
done
if [ -n "$pids" ]; then
    n=$(echo $pids | wc -w)
    echo "process $arg alive ($n running)"
    echo "pids:$pids"
    exit 0
fi
echo "process $arg not running"
exit 1
