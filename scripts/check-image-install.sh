#!/usr/bin/env bash
# CI: the Docker image's install steps without a container engine. Runs scripts/install-image.sh
# into a fresh virtual environment (without the MNIST download, which needs internet), then
# starts the installed `layerlab` as the image does (personal mode, and workshop mode once the
# app has it), waits for scripts/healthcheck.py (the image's HEALTHCHECK) to pass, checks a
# page and a static file, and stops it. Any failure exits non-zero with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
python=${PYTHON:-python3}
start_timeout_s=60
stop_timeout_s=20

while read -r name; do unset "$name"; done < <(compgen -e | grep '^LAYERLAB_' || true)  # as in a bare image

work=$(mktemp -d "${TMPDIR:-/tmp}/layerlab-image-check.XXXXXX")
venv=$work/venv
server_pid=""
say() { echo "check-image-install: $*"; }
fail() { echo "check-image-install: FAILED: $*" >&2; exit 1; }
stop_server() {  # SIGTERM, as `docker stop` sends; then whatever is left of its process group
  [ -n "$server_pid" ] || return 0
  local pid=$server_pid waited=0
  server_pid=""
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((stop_timeout_s * 10)) ]; do
    sleep 0.1; waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL -- "-$pid" 2>/dev/null || true
    return 1
  fi
  kill -KILL -- "-$pid" 2>/dev/null || true  # worker processes it may have left behind
  say "stopped $(awk "BEGIN {printf \"%.1f\", $waited / 10}") s after SIGTERM"
}
trap 'stop_server || true; rm -rf "$work"' EXIT

began=$SECONDS
# The Dockerfile and compose.yaml use what is checked here.
grep -q 'scripts/install-image.sh' Dockerfile || fail "the Dockerfile does not run scripts/install-image.sh"
grep -q 'scripts/healthcheck.py' Dockerfile || fail "the Dockerfile's HEALTHCHECK does not run scripts/healthcheck.py"
yaml_python=""
for candidate in .venv/bin/python "$python"; do
  if [ -x "$(command -v "$candidate")" ] && "$candidate" -c 'import yaml' 2>/dev/null; then yaml_python=$candidate; break; fi
done
if [ -n "$yaml_python" ]; then
  "$yaml_python" - <<'EOF' || fail "compose.yaml (see above)"
import sys

import yaml

app = yaml.safe_load(open("compose.yaml"))["services"]["app"]
if "8000:8000" not in app["ports"] or "scripts/healthcheck.py" not in str(app["healthcheck"]["test"]):
    sys.exit("compose.yaml's app service must publish 8000:8000 and run scripts/healthcheck.py")
if app["environment"].get("LAYERLAB_MODE") != "workshop":
    sys.exit("compose.yaml's app service must set LAYERLAB_MODE=workshop")
EOF
  say "compose.yaml parses"
else
  say "compose.yaml not parsed: no PyYAML here"
fi

say "installing into a fresh virtual environment with scripts/install-image.sh"
say "(MNIST and Fashion-MNIST are not downloaded: LAYERLAB_SKIP_DATASET_CACHE=1, no internet for them here)"
if ! LAYERLAB_TF=cpu LAYERLAB_SKIP_DATASET_CACHE=1 PYTHON="$python" \
     bash scripts/install-image.sh "$venv" >"$work/install.log" 2>&1; then
  tail -n 40 "$work/install.log" >&2
  fail "scripts/install-image.sh did not complete (the end of its output is above)"
fi
grep '^install-image:' "$work/install.log"
say "installed in $((SECONDS - began)) s"
[ -x "$venv/bin/layerlab" ] || fail "the install made no layerlab command in $venv/bin"

free_port() {
  "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# serve LABEL [VAR=VALUE...]: start layerlab from the venv, outside the source tree, and wait
# until it is healthy; leaves it running ($server_pid, $base_url, $log).
serve() {
  local label=$1; shift
  local port; port=$(free_port)
  base_url=http://127.0.0.1:$port
  log=$work/server-$label.log
  mkdir -p "$work/data-$label"
  say "starting layerlab ($label) on $base_url"
  (cd "$work" && exec env "$@" LAYERLAB_DATA_DIR="$work/data-$label" LAYERLAB_HOST=127.0.0.1 \
     LAYERLAB_PORT="$port" LAYERLAB_DATASET_MIRROR=http://127.0.0.1:9/ \
     setsid "$venv/bin/layerlab" >"$log" 2>&1) &
  server_pid=$!
  local started=$SECONDS
  until "$venv/bin/python" "$repo/scripts/healthcheck.py" "$base_url" >"$work/health.out" 2>&1; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      wait "$server_pid" && rc=0 || rc=$?
      server_pid=""
      tail -n 40 "$log" >&2
      fail "layerlab ($label) exited with code $rc before it was healthy (its log's end is above)"
    fi
    if [ $((SECONDS - started)) -ge "$start_timeout_s" ]; then
      cat "$work/health.out" >&2
      tail -n 40 "$log" >&2
      fail "layerlab ($label) was not healthy within $start_timeout_s s (the last health check and its log are above)"
    fi
    sleep 0.5
  done
  say "healthy after $((SECONDS - started)) s: $(cat "$work/health.out")"
}

# expect PATH TEXT: GET PATH answers 200 and its body holds TEXT.
expect() {
  "$venv/bin/python" - "$base_url$1" "$2" <<'EOF' || fail "GET $1 (see above)"
import sys
import urllib.request

url, text = sys.argv[1], sys.argv[2]
try:
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode("utf-8", "replace")
except OSError as exc:
    sys.exit(f"{url}: {exc}")
if text not in body:
    sys.exit(f"{url} answered without {text!r}: {body[:300]!r}")
EOF
}

serve personal
expect / "LayerLab"                 # templates/ found from the installed app
expect /static/app.css "{"          # static/ too
stop_server || fail "layerlab (personal) did not stop within $stop_timeout_s s of SIGTERM (docker stop waits 10 s)"

has_mode=$(cd "$work" && "$venv/bin/python" -c 'from app.config import Settings; print("mode" in Settings.model_fields)')
if [ "$has_mode" = True ]; then
  password=$("$venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(18))')  # 24 characters
  serve workshop LAYERLAB_MODE=workshop LAYERLAB_INSTRUCTOR_PASSWORD="$password"
  stop_server || fail "layerlab (workshop) did not stop within $stop_timeout_s s of SIGTERM (docker stop waits 10 s)"
else
  say "workshop mode not checked: this app's Settings have no mode yet"
fi

say "passed in $((SECONDS - began)) s"
