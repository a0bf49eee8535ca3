#!/usr/bin/env bash
# `make cluster` / `make cluster-stop`: the multi-machine topology of docs/scaling.md, on one host.
#
#   ops/cluster.sh start   a PostgreSQL 15 primary, one hot standby streaming from it
#                          (pg_basebackup -R -X stream), Redis for the rate budgets, two
#                          gunicorn app nodes reading from the standby, HAProxy in front of
#                          them, the event relay (RabbitMQ at EVENTS_BROKER_URL) and the
#                          asynchronous sync worker; prints the URL
#   ops/cluster.sh stop    stops every process it started and removes its directory
#
# Debian packages it needs (installed when missing, as root): postgresql-15, redis-server,
# haproxy. RabbitMQ is used if it answers at EVENTS_BROKER_URL (default: the local one);
# without it the relay keeps retrying and the rest works. Ports (override in the env):
# CLUSTER_PORT (8800, HAProxy), 8801-8802 (app nodes), 55432-55433 (PostgreSQL), 56379 (Redis).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${CLUSTER_DIR:-/tmp/pp-cluster}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PORT="${CLUSTER_PORT:-8800}"
NODE_PORTS=("$((PORT + 1))" "$((PORT + 2))")
PRIMARY_PORT="${CLUSTER_PRIMARY_PORT:-55432}"
STANDBY_PORT="${CLUSTER_STANDBY_PORT:-55433}"
REDIS_PORT="${CLUSTER_REDIS_PORT:-56379}"
BROKER="${EVENTS_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}"
VENV_BIN="$PWD/.venv/bin"

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

need() {  # need COMMAND PACKAGE: install the Debian package when the command is missing
  command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] && return 0
  echo "installing $2" >&2
  apt-get install -y "$2" >/dev/null || (apt-get update >/dev/null && apt-get install -y "$2" >/dev/null)
}

app_env() {  # the environment every app process of the cluster shares
  export APP_ENV=development
  export DATABASE_URL="postgresql://postgres@127.0.0.1:$PRIMARY_PORT/pp"
  export DATABASE_REPLICA_URLS="postgresql://postgres@127.0.0.1:$STANDBY_PORT/pp"
  export RATELIMIT_STORAGE_URI="redis://127.0.0.1:$REDIS_PORT/0"
  export EVENTS_BROKER_URL="$BROKER"
  # One secret on every node: a console session signed on one opens pages on the other.
  SECRET_KEY="$(cat "$DIR/secret_key")"
  export SECRET_KEY
  # X-Forwarded-For from HAProxy, one hop.
  export TRUSTED_PROXIES=1
}

start() {
  if [ -e "$DIR/running" ]; then
    echo "a cluster already runs from $DIR (make cluster-stop first)" >&2
    exit 1
  fi
  need "$PG_BIN/initdb" postgresql-15
  need redis-server redis-server
  need haproxy haproxy
  [ -x "$VENV_BIN/gunicorn" ] || make install
  mkdir -p "$DIR"
  touch "$DIR/running"
  [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
  python3 -c 'import secrets; print(secrets.token_hex(32))' >"$DIR/secret_key"

  echo "primary on $PRIMARY_PORT" >&2
  as_postgres "$PG_BIN/initdb" -D "$DIR/primary" -U postgres --auth=trust -E UTF8 >/dev/null
  as_postgres "$PG_BIN/pg_ctl" -D "$DIR/primary" -l "$DIR/primary.log" -w \
    -o "-p $PRIMARY_PORT -k $DIR -c listen_addresses=127.0.0.1" start >/dev/null
  as_postgres "$PG_BIN/createdb" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres pp
  app_env
  "$VENV_BIN/flask" --app wsgi db upgrade 2>"$DIR/migrate.log"

  echo "standby on $STANDBY_PORT (pg_basebackup -R -X stream)" >&2
  as_postgres "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres \
    -D "$DIR/standby" -R -X stream -c fast
  as_postgres "$PG_BIN/pg_ctl" -D "$DIR/standby" -l "$DIR/standby.log" -w \
    -o "-p $STANDBY_PORT -k $DIR -c listen_addresses=127.0.0.1" start >/dev/null

  echo "redis on $REDIS_PORT" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir "$DIR" --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log"

  for port in "${NODE_PORTS[@]}"; do
    echo "app node on $port" >&2
    mkdir -p "$DIR/metrics-$port"
    PROMETHEUS_MULTIPROC_DIR="$DIR/metrics-$port" GUNICORN_BIND="127.0.0.1:$port" \
      "$VENV_BIN/gunicorn" --config gunicorn.conf.py --daemon --pid "$DIR/node-$port.pid" \
      --error-logfile "$DIR/node-$port.log" wsgi:app
  done

  for port in "${NODE_PORTS[@]}"; do  # each node ready before HAProxy starts checking it
    for _ in $(seq 120); do
      curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
      sleep 0.5
    done
  done

  echo "event relay and sync worker" >&2
  nohup "$VENV_BIN/flask" --app wsgi events relay >"$DIR/relay.log" 2>&1 &
  echo $! >"$DIR/relay.pid"
  nohup "$VENV_BIN/flask" --app wsgi syncs worker >"$DIR/worker.log" 2>&1 &
  echo $! >"$DIR/worker.pid"

  echo "haproxy on $PORT" >&2
  cat >"$DIR/haproxy.cfg" <<EOF
global
    daemon
    pidfile $DIR/haproxy.pid
    maxconn 2000
defaults
    mode http
    timeout connect 5s
    timeout client 330s
    timeout server 330s
    option forwardfor
frontend api
    bind 127.0.0.1:$PORT
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /readyz
    server node1 127.0.0.1:${NODE_PORTS[0]} check inter 2s
    server node2 127.0.0.1:${NODE_PORTS[1]} check inter 2s
EOF
  haproxy -f "$DIR/haproxy.cfg"

  for _ in $(seq 120); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null
  echo "cluster ready: http://127.0.0.1:$PORT  (console: http://127.0.0.1:$PORT/console/;" \
    "logs in $DIR; make cluster-stop removes it)"
}

stop_pid() {  # stop_pid FILE: TERM the process whose id FILE holds, then wait for it
  [ -f "$1" ] || return 0
  local pid
  pid="$(cat "$1")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

stop() {
  [ -d "$DIR" ] || { echo "no cluster at $DIR" >&2; return 0; }
  stop_pid "$DIR/haproxy.pid"
  stop_pid "$DIR/relay.pid"
  stop_pid "$DIR/worker.pid"
  for port in "${NODE_PORTS[@]}"; do stop_pid "$DIR/node-$port.pid"; done
  stop_pid "$DIR/redis.pid"
  for server in standby primary; do
    [ -d "$DIR/$server" ] && as_postgres "$PG_BIN/pg_ctl" -D "$DIR/$server" -m fast -w stop \
      >/dev/null 2>&1 || true
  done
  rm -rf "$DIR"
  echo "cluster stopped and removed" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
