#!/bin/sh
# fs_writable.sh — mon-compatible monitor: is a directory's file system writable, with enough
# free space?
#
# Usage: fs_writable.sh DIR [MIN_FREE_MIB]
#   DIR           directory to test (a small temporary file is created and removed there)
#   MIN_FREE_MIB  free space (MiB, for unprivileged users) below which the check fails,
#                 default 0 (no space check)
#
# Exit 0 when a file can be written, read back and removed and free space is sufficient,
# 1 otherwise, 2 on bad arguments. First stdout line: summary.
set -u
dir=${1:-}
min=${2:-0}
if [ -z "$dir" ]; then
    echo "usage: fs_writable.sh DIR [MIN_FREE_MIB]"
    exit 2
fi
case $min in
    ''|*[!0-9]*) echo "bad MIN_FREE_MIB: $min"; exit 2 ;;
esac
if [ ! -d "$dir" ]; then
    echo "fs $dir: not a directory"
    exit 1
fi
probe="$dir/.hadiag-fs-probe.$$"
token="hadiag $$ $(date +%s 2>/dev/null)"
if ! { printf '%s\n' "$token" > "$probe"; } 2>/dev/null; then
    echo "fs $dir: not writable"
    exit 1
fi
back=$(cat "$probe" 2>/dev/null)
rm -f "$probe" 2>/dev/null
if [ "$back" != "$token" ]; then
    echo "fs $dir: read-back mismatch"
    exit 1
fi
free_kib=$(df -Pk "$dir" 2>/dev/null | awk 'NR==2 {print $4}')
case $free_kib in
    ''|*[!0-9]*) echo "fs $dir: cannot read free space"; exit 1 ;;
esac
free_mib=$((free_kib / 1024))
if [ "$free_mib" -lt "$min" ]; then
    echo "fs $dir: only $free_mib MiB free, need $min"
    exit 1
fi
echo "fs $dir writable, $free_mib MiB free"
exit 0
