#!/bin/sh
# The container's entrypoint (Dockerfile, Fly.io). With LITESTREAM_REPLICA_URL
# set, a missing database is first restored from the replica (a new volume, a
# lost host), then storehook runs under `litestream replicate`, which ships
# every WAL change to S3-compatible storage. Without it, storehook runs alone.
set -eu

db="${DATABASE_PATH:-/data/storehook.db}"
mkdir -p "$(dirname "$db")"

# Fly mounts volumes owned by root: hand the folder to the unprivileged user
# and drop to it (setpriv is part of util-linux, in every Debian image).
run=""
if [ "$(id -u)" = 0 ] && id storehook >/dev/null 2>&1; then
  chown storehook:storehook "$(dirname "$db")"
  run="setpriv --reuid=storehook --regid=storehook --init-groups"
fi

[ $# -eq 0 ] && set -- serve

if [ -n "${LITESTREAM_REPLICA_URL:-}" ] && [ "$1" = serve ]; then
  $run litestream restore -config "${LITESTREAM_CONFIG:-/etc/litestream.yml}" -if-db-not-exists -if-replica-exists "$db"
  exec $run litestream replicate -config "${LITESTREAM_CONFIG:-/etc/litestream.yml}" -exec "storehook serve"
fi
exec $run storehook "$@"
