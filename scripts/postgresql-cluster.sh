#!/usr/bin/env bash
# A private PostgreSQL cluster for tests, benchmarks and the multi-node chaos run, on loopback only:
#   scripts/postgresql-cluster.sh start DIR PORT   initdb into DIR if empty, start it on 127.0.0.1:PORT, print its URL
#   scripts/postgresql-cluster.sh stop DIR         stop it (the directory stays; remove it yourself)
# The cluster's superuser is p8, with trust authentication on loopback (nothing else can reach it). initdb refuses to
# run as root: as root, the cluster is owned by the postgres user Debian's package creates.
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [[ -z $bin ]]; then
  echo "PostgreSQL is not installed (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
command=${1:?usage: $0 start DIR PORT | stop DIR}
dir=${2:?usage: $0 start DIR PORT | stop DIR}
case $command in
  start)
    port=${3:?usage: $0 start DIR PORT}
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then
      chown postgres "$dir"
      chmod o+x "$(dirname "$dir")"  # mktemp -d makes a 0700 directory the postgres user could not enter
    fi
    if [[ ! -f $dir/PG_VERSION ]]; then
      as_owner "$bin/initdb" -D "$dir" -U p8 --auth=trust -E UTF8 --locale=C >"$dir.initdb.log" 2>&1 \
        || { cat "$dir.initdb.log" >&2; exit 1; }
    fi
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300" start >/dev/null \
      || { tail -20 "$dir/server.log" >&2; exit 1; }
    echo "postgresql://p8@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    ;;
  *)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
