#!/usr/bin/env bash
# Bench s1 over HTTPS: wrk through P-8's TLS client port and through nginx terminating TLS with the same
# certificate, both in front of the harness's nginx test backend, interleaved in one run (issue 15).
#
#   P8_BIN=$PWD/.build/release/p8 scripts/bench/s1_https.sh [CONNS] [DURATION] [RUNS]
#
# Needs ../shared/bench (its targets.sh and wrk_json.lua), nginx, wrk and openssl. Prints one JSON line per
# (target, connections): median requests/s and latency, the proxy's CPU per request, and P-8's ratio to nginx.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BENCH_DIR=${BENCH_DIR:-$here/../../../shared/bench}
source "$BENCH_DIR/targets.sh"
: "${P8_BIN:?P8_BIN must name the p8 executable (a release build)}"
conns=${1:-64}
duration=${2:-10}
runs=${3:-3}
NGINX_TLS_PORT=${NGINX_TLS_PORT:-18443}
P8_TLS_PORT=${P8_TLS_PORT:-18444}

bench_init
start_backend

# One self-signed certificate for both proxies.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -keyout "$BENCH_TMP/tls.key" -out "$BENCH_TMP/tls.crt" 2>/dev/null

dir=$BENCH_TMP/nginx-tls
mkdir -p "$dir/tmp"
cat > "$dir/nginx.conf" <<CONF
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile 19000;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_TLS_PORT ssl backlog=4096;
    ssl_certificate $BENCH_TMP/tls.crt;
    ssl_certificate_key $BENCH_TMP/tls.key;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
nginx -q -c "$dir/nginx.conf" -p "$dir"
wait_port "$NGINX_TLS_PORT"
nginx_pid=$(cat "$dir/nginx.pid")
echo "nginx-tls $nginx_pid" >> "$BENCH_TMP/pids"

p8dir=$BENCH_TMP/p8-tls
mkdir -p "$p8dir/runner/certs" "$p8dir/run"
cp "$BENCH_TMP/tls.crt" "$p8dir/runner/certs/default_$P8_TLS_PORT.crt"
cp "$BENCH_TMP/tls.key" "$p8dir/runner/certs/default_$P8_TLS_PORT.key"
cat > "$p8dir/p-8.conf" <<CONF
[global]
rundir=$p8dir/run
[runner]
http_port=127.0.0.1:$P8_PORT
https_ports=127.0.0.1:$P8_TLS_PORT
log_level=2
[proxy]
routesfile=routes
[handler]
push_in_http_addr=127.0.0.1
push_in_http_port=$P8_PUBLISH_PORT
push_in_spec=
push_in_sub_specs=
command_spec=
stats_spec=
[store]
database_file=$p8dir/p8.sqlite
CONF
echo "* 127.0.0.1:$BACKEND_PORT" > "$p8dir/routes"
(cd "$p8dir" && exec "$P8_BIN" --config "$p8dir/p-8.conf" > "$p8dir/p8.out" 2>&1) &
p8_pid=$!
echo "p8 $p8_pid" >> "$BENCH_TMP/pids"
wait_port "$P8_TLS_PORT" 30

python3 "$here/s1_https.py" --bench-dir "$BENCH_DIR" --conns "$conns" --duration "$duration" --runs "$runs" \
  --target "nginx=https://127.0.0.1:$NGINX_TLS_PORT/plain" --pids "nginx=$nginx_pid" \
  --target "p8=https://127.0.0.1:$P8_TLS_PORT/plain" --pids "p8=$p8_pid"
