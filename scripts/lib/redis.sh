# A private redis-server for scripts (sourced by test.sh and quickstart.sh; not run on its own).
#   in:   a `log` function defined by the caller (messages for stderr)
#   out:  start_redis: REDIS_URL exported, redis_pid and redis_dir set; stop_redis: both undone.
#   deps: redis-server, installed with apt-get (root or passwordless sudo) when missing; scripts/lib/apt.sh.
# Redis runs with persistence off in a temp dir, in its own session (setsid), so that a Ctrl-C in the
# terminal reaches only the calling script, which stops Redis after whatever still uses it.

install_redis() {
  apt_install redis-server || {
    log "Install Redis >= 7 (Debian/Ubuntu: apt-get install redis-server) or set REDIS_URL=redis://host:port."
    exit 1
  }
}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# PING over bash's /dev/tcp, so redis-cli is not needed. A subshell keeps fd 3 and the stderr redirect local.
redis_answers() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 1 reply <&3 || exit 1
    [[ $reply == +PONG* ]]
  ) 2>/dev/null
}

redis_pid=''
redis_dir=''

start_redis() {
  command -v redis-server >/dev/null || install_redis
  local port session=()
  port=$(free_port)
  redis_dir=$(mktemp -d -t kcache-redis.XXXXXX)
  if command -v setsid >/dev/null; then session=(setsid); fi
  "${session[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_dir" \
    --daemonize no --logfile "$redis_dir/redis.log" &
  redis_pid=$!
  for _ in $(seq 1 100); do
    if redis_answers "$port"; then
      export REDIS_URL="redis://127.0.0.1:$port"
      log "redis-server $(redis-server --version | grep -o 'v=[^ ]*') on $REDIS_URL (pid $redis_pid)"
      return 0
    fi
    if ! kill -0 "$redis_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  log "redis-server did not start; its log:"
  cat "$redis_dir/redis.log" >&2 || true
  exit 1
}

stop_redis() {
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=''
  fi
  if [ -n "$redis_dir" ]; then
    rm -rf "$redis_dir"
    redis_dir=''
  fi
}
