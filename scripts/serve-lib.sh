# serve-lib.sh: what scripts/real-vllm and scripts/real-llamacpp share: probing a URL, the pid file
# of a server started in its own process group, stopping that group, waiting for /health.
# Sourced, not run. The sourcing script sets RUN_DIR and NAME (the file prefix: vllm, llamacpp) and
# defines log and die.

# Prints the HTTP status of GET url ("000" when nothing answers).
http_status() {
  local url="$1"
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -m 5 -w '%{http_code}' "$url" 2>/dev/null || true
  else
    python3 - "$url" <<'EOF' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
EOF
  fi
}

pid_file() { echo "$RUN_DIR/$NAME-$1.pid"; }
log_file() { echo "$RUN_DIR/$NAME-$1.log"; }

# pid from the pid file if that process (group) is alive, else nothing.
live_pid() {
  local pf; pf="$(pid_file "$1")"
  [[ -f "$pf" ]] || return 0
  local pid; pid="$(cat "$pf" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 -- "-$pid" 2>/dev/null; then echo "$pid"; fi
}

kill_group() {
  local pid="$1" i
  kill -TERM -- "-$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 -- "-$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "process group $pid still alive after 10 s; sending KILL"
  kill -KILL -- "-$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 -- "-$pid" 2>/dev/null || return 0
    sleep 0.1
  done
}

# Refuses to start when our server on PORT is alive but unhealthy, or a stranger holds the port;
# prints the URL and returns 0 when ours is already up (the caller then returns), 1 otherwise.
already_serving() {
  local port="$1" url="http://127.0.0.1:$1" pf old st
  pf="$(pid_file "$port")"
  old="$(live_pid "$port")"
  if [[ -n "$old" ]]; then
    if [[ "$(http_status "$url/health")" == 200 ]]; then
      log "already running (pid $old)"
      echo "$url"
      return 0
    fi
    die "a server from $pf (pid $old) is alive but $url/health is not 200; run '$0 stop --port $port'"
  fi
  rm -f "$pf"
  st="$(http_status "$url/health")"
  [[ "$st" == 000 ]] || die "port $port is already answering (GET /health -> $st) and is not ours"
  return 1
}

# start_detached PORT TIMEOUT_S ENV_ASSIGNMENTS... -- ARGV...: the server in a process group of its
# own (setsid: stop takes the whole tree; the pid doubles as the group id), its output in the log;
# waits until GET /health answers 200 and prints the URL, or shows the log's tail and fails.
start_detached() {
  local port="$1" timeout="$2"; shift 2
  local envs=()
  while (($#)) && [[ "$1" != "--" ]]; do envs+=("$1"); shift; done
  shift
  local url="http://127.0.0.1:$port" pf lf
  pf="$(pid_file "$port")"; lf="$(log_file "$port")"
  mkdir -p "$RUN_DIR"
  log "starting: $*"
  log "log: $lf"
  env ${envs[@]+"${envs[@]}"} setsid "$@" </dev/null >"$lf" 2>&1 &
  local pid=$!
  echo "$pid" > "$pf"
  local start=$SECONDS next=10
  while :; do
    if [[ "$(http_status "$url/health")" == 200 ]]; then
      log "healthy after $((SECONDS - start)) s (pid $pid)"
      echo "$url"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "server exited before becoming healthy; last lines of $lf:"
      tail -n 40 "$lf" >&2 || true
      kill_group "$pid"; rm -f "$pf"
      exit 1
    fi
    if ((SECONDS - start >= timeout)); then
      log "not healthy after $timeout s; last lines of $lf:"
      tail -n 40 "$lf" >&2 || true
      kill_group "$pid"; rm -f "$pf"
      exit 1
    fi
    if ((SECONDS - start >= next)); then
      log "waiting for $url/health ($((SECONDS - start)) s): $(tail -n 1 "$lf" 2>/dev/null | cut -c1-160)"
      next=$((next + 10))
    fi
    sleep 1
  done
}

stop_port() {
  local port="$1" pf pid
  pf="$(pid_file "$port")"
  pid="$(live_pid "$port")"
  if [[ -z "$pid" ]]; then
    rm -f "$pf"
    log "no server running on port $port"
    return 0
  fi
  log "stopping process group $pid (port $port)"
  kill_group "$pid"
  rm -f "$pf"
  log "stopped"
}
