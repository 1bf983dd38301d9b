#!/usr/bin/env bash
# The lab image built and run for real: build the Dockerfile, start docker-compose.yml, and check
# from outside the container what a lab relies on: health, a run streamed over the websocket,
# a non-root server, runs kept across `restart`, a clean `stop`. Starts dockerd when it is not
# running. Where the public image registry or PyPI's CPU torch index is out of reach, the build
# gets a Debian bookworm base made here (debootstrap) and a wheelhouse from this host's pip.
# Run by scripts/test.sh; needs .venv (scripts/setup.sh) for its client, scripts/lab_probe.py.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${LI2_LAB_CACHE:-/var/cache/li2lab}  # the debootstrapped base and the wheelhouse
IMAGE=li2lab:lab-check                     # not :latest, so a lab's own image is left alone
PROJECT=li2labcheck$$
PY=.venv/bin/python
T0=$SECONDS
WORK=$(mktemp -d)
DOCKERD_PID="" WHEEL_PID="" COMPOSE=()

say() { printf '[lab %3ds] %s\n' $((SECONDS - T0)) "$*"; }
fail() { say "FAILED: $*"; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# on any exit: the stack down with its volume, the wheel server and a dockerd we started stopped
cleanup() {
  local rc=$?
  if [ ${#COMPOSE[@]} -gt 0 ]; then
    if [ $rc != 0 ] && [ -n "$(dk ps -aq --filter "label=com.docker.compose.project=$PROJECT")" ]; then
      say "server log (last 40 lines):"; compose logs --no-color --tail 40 || true
    fi
    compose down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  [ -z "$WHEEL_PID" ] || kill "$WHEEL_PID" 2>/dev/null || true
  if [ -n "$DOCKERD_PID" ]; then as_root kill "$DOCKERD_PID" 2>/dev/null || true; wait "$DOCKERD_PID" || true; fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in dockerd debootstrap; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || fail "$tool is missing (scripts/test.sh installs docker.io and debootstrap)"
done
[ -x "$PY" ] || fail "no .venv: run scripts/setup.sh first"

# --- the engine: this user's docker if it answers, else root's; dockerd started if none runs
DOCKER=(docker)
if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then DOCKER=(sudo docker); fi
  if ! "${DOCKER[@]}" info >/dev/null 2>&1; then
    # dockerd picks its storage driver: overlay2 where the kernel allows, else down to vfs
    # (which copies every layer: several times slower); LI2_DOCKERD_ARGS may force one
    # shellcheck disable=SC2086
    if [ "$(id -u)" = 0 ]; then dockerd ${LI2_DOCKERD_ARGS:-} >"$WORK/dockerd.log" 2>&1 &
    else sudo dockerd ${LI2_DOCKERD_ARGS:-} >"$WORK/dockerd.log" 2>&1 &
    fi
    DOCKERD_PID=$!
    for _ in $(seq 60); do
      "${DOCKER[@]}" info >/dev/null 2>&1 || { [ -d "/proc/$DOCKERD_PID" ] && sleep 1 && continue; }
      break
    done
    "${DOCKER[@]}" info >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log"; fail "dockerd did not start"; }
    say "started dockerd (pid $DOCKERD_PID, storage driver $("${DOCKER[@]}" info -f '{{.Driver}}'))"
  fi
fi
dk() { "${DOCKER[@]}" "$@"; }

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
HOST_PORT=$(free_port)
BASE_URL=http://127.0.0.1:$HOST_PORT
# the check's own project, host port and image; no instructor token, so the probe may create runs
SUDO=()
[ "${DOCKER[0]}" = docker ] || SUDO=(sudo)
# docker-compose v1 gives up on a request after 60 s; removing a container copied by vfs can take longer
COMPOSE_ENV=(env "LI2_IMAGE=$IMAGE" "LI2_HOST_PORT=$HOST_PORT" "LI2_INSTRUCTOR_TOKEN="
             COMPOSE_HTTP_TIMEOUT=600)
if dk compose version >/dev/null 2>&1; then COMPOSE=("${SUDO[@]}" "${COMPOSE_ENV[@]}" docker compose)
elif command -v docker-compose >/dev/null; then COMPOSE=("${SUDO[@]}" "${COMPOSE_ENV[@]}" docker-compose)
else fail "neither 'docker compose' nor docker-compose is installed"; fi
compose() { "${COMPOSE[@]}" -f docker-compose.yml -p "$PROJECT" "$@"; }

# --- substitutes, only for what this machine cannot reach
BUILD_ARGS=()
if ! dk image inspect python:3.11-slim >/dev/null 2>&1 \
   && ! timeout 120 "${DOCKER[@]}" pull -q python:3.11-slim >/dev/null 2>&1; then
  # Debian bookworm with its Python 3.11 in a venv on PATH, as python:3.11-slim has `python`
  # and `pip`; it trusts this host's extra CAs (a TLS-inspecting proxy) and pip is told so.
  extra_cas=(/usr/local/share/ca-certificates/*.crt)
  [ -e "${extra_cas[0]}" ] || extra_cas=()
  packages=python3.11,python3.11-venv,python3-distutils
  key=$(echo "$packages v1" | cat - "${extra_cas[@]}" | sha256sum | cut -c1-12)
  BASE=li2lab-base:bookworm-$key
  if ! dk image inspect "$BASE" >/dev/null 2>&1; then
    rootfs_tar=$CACHE/li2lab-base-bookworm-$key.tar  # no colon: tar reads host:path as remote
    if [ ! -s "$rootfs_tar" ]; then
      say "no python:3.11-slim here: debootstrapping Debian bookworm with python3.11 into $CACHE"
      as_root mkdir -p "$CACHE"
      as_root debootstrap --variant=minbase --include="$packages" \
        bookworm "$WORK/rootfs" "${LI2_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }
      as_root chroot "$WORK/rootfs" python3.11 -m venv /opt/python
      if [ ${#extra_cas[@]} -gt 0 ]; then
        as_root cp "${extra_cas[@]}" "$WORK/rootfs/usr/local/share/ca-certificates/"
        as_root chroot "$WORK/rootfs" update-ca-certificates >/dev/null 2>&1
      fi
      as_root rm -rf "$WORK/rootfs/var/cache/apt" "$WORK/rootfs/var/lib/apt/lists" "$WORK/rootfs/debootstrap" \
        "$WORK"/rootfs/usr/share/{doc,man,info,locale}
      as_root rm -f "$CACHE"/li2lab-base-*.tar  # made with other CAs
      as_root tar -C "$WORK/rootfs" -cf "$rootfs_tar.part" . && as_root mv "$rootfs_tar.part" "$rootfs_tar"
      as_root rm -rf "$WORK/rootfs"
    fi
    dk import \
      --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
      --change 'CMD ["python"]' "$rootfs_tar" "$BASE" >/dev/null
    say "made the base image $BASE"
    for old in $(dk images -q --filter reference='li2lab-base:*' --filter before="$BASE"); do
      dk rmi "$old" >/dev/null 2>&1 || true  # an earlier base (other CAs), if nothing uses it
    done
  fi
  BUILD_ARGS+=(--build-arg "BASE_IMAGE=$BASE")
fi
if ! curl -fs -o /dev/null --max-time 15 https://download.pytorch.org/whl/cpu/torch/; then
  # the same wheels from this host's pip configuration, served as a simple index
  as_root mkdir -p "$CACHE/wheels"
  ls "$CACHE"/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1 \
    || as_root "$PY" -m pip download -q --disable-pip-version-check -d "$CACHE/wheels" torch==2.13.0 \
    >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log"; fail "pip download torch==2.13.0"; }
  for wheel in "$CACHE"/wheels/*.whl; do
    name=$(basename "$wheel"); project=${name%%-*}; project=$(echo "$project" | tr 'A-Z_.' 'a-z--')
    mkdir -p "$WORK/index/$project" && ln -sf "$wheel" "$WORK/index/$project/$name"
  done
  # a fixed port when free: the index URL is part of the torch layer's cache key
  port=18471
  "$PY" -c "import socket; socket.socket().bind(('127.0.0.1', $port))" 2>/dev/null \
    || port=$(free_port)
  "$PY" -m http.server --bind 127.0.0.1 --directory "$WORK/index" "$port" >/dev/null 2>&1 &
  WHEEL_PID=$!
  BUILD_ARGS+=(--network host --build-arg "TORCH_INDEX=http://127.0.0.1:$port/")
  say "no PyPI CPU torch index here: serving $(ls "$CACHE/wheels" | wc -l) wheels from $CACHE/wheels on port $port"
fi

# --- build: BuildKit runs no container for the metadata steps (the legacy builder copies the
# whole image for each under vfs); Debian's docker 20.10 client has it without buildx
BUILD=("${DOCKER[@]}" build)
if ! dk buildx version >/dev/null 2>&1; then
  if [ -x /usr/bin/docker ] && /usr/bin/docker version --format '{{.Client.Version}}' 2>/dev/null | grep -q '^20\.'; then
    BUILD=(env DOCKER_BUILDKIT=1 /usr/bin/docker build)
    [ "${DOCKER[0]}" = docker ] || BUILD=(sudo env DOCKER_BUILDKIT=1 /usr/bin/docker build)
  fi
fi
say "building $IMAGE from ./Dockerfile ${BUILD_ARGS[*]}"
t=$SECONDS
"${BUILD[@]}" --progress plain --label org.li2lab.lab-check=1 "${BUILD_ARGS[@]}" -t "$IMAGE" . \
  >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; fail "docker build"; }
BUILD_S=$((SECONDS - t))
dk image prune -f --filter label=org.li2lab.lab-check=1 >/dev/null  # the previous check's image
SIZE=$(dk image inspect -f '{{.Size}}' "$IMAGE")
SIZE_MB=$((SIZE / 1000000))
say "built in ${BUILD_S}s; image size ${SIZE_MB} MB"

wait_healthy() {  # seconds until the compose healthcheck reports healthy
  local cid=$1 start=$SECONDS state
  while [ $((SECONDS - start)) -lt 180 ]; do
    state=$(dk inspect -f '{{.State.Health.Status}}' "$cid")
    [ "$state" = healthy ] && { echo $((SECONDS - start)); return; }
    [ "$state" = unhealthy ] && break
    sleep 1
  done
  fail "the container is $state, not healthy, after $((SECONDS - start))s"
}

# --- up: the repository's compose file, the image just built
t=$SECONDS
compose up -d --no-build >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; fail "compose up"; }
CID=$(compose ps -q li2lab)
[ -n "$CID" ] || fail "compose up started no li2lab container"
say "compose up: container started after $((SECONDS - t))s"
for _ in $(seq 120); do "$PY" scripts/lab_probe.py "$BASE_URL" health 2>/dev/null && break; sleep 1; done
"$PY" scripts/lab_probe.py "$BASE_URL" health || fail "/api/health does not answer on $BASE_URL"
ANSWER_S=$((SECONDS - t))
HEALTHY_S=$(wait_healthy "$CID") || exit 1
HEALTHY_S=$((HEALTHY_S + ANSWER_S))
say "up: /api/health answered after ${ANSWER_S}s, healthcheck healthy after ${HEALTHY_S}s"

procs=$(dk top "$CID" -eo pid,uid,args | tail -n +2)
echo "$procs" | sed 's/^/    /'
[ "$(dk exec "$CID" id -u)" != 0 ] || fail "the container runs as root"
echo "$procs" | awk '$2 == 0 { bad = 1 } END { exit bad }' || fail "a process in the container runs as root"
echo "$procs" | grep -q 'li2 serve' || fail "no li2 serve process in the container"
say "non-root: every process runs as uid $(dk exec "$CID" id -u)"

read -r RUN_ID ROWS < <("$PY" scripts/lab_probe.py "$BASE_URL" lecture) || fail "the lecture run"

t=$SECONDS
compose restart >/dev/null 2>&1 || fail "compose restart"
wait_healthy "$CID" >/dev/null || exit 1
"$PY" scripts/lab_probe.py "$BASE_URL" kept "$RUN_ID" "$ROWS" || fail "the run did not survive restart"
say "restart: healthy again after $((SECONDS - t))s, run $RUN_ID kept in the named volume"

LONG_ID=$("$PY" scripts/lab_probe.py "$BASE_URL" start-long) || fail "starting a long run"
GRACE=$("$PY" -c 'import sys, yaml; print(yaml.safe_load(open("docker-compose.yml"))["services"]["li2lab"]["stop_grace_period"])')
t=$SECONDS
compose stop >/dev/null 2>&1 || fail "compose stop"
STOP_S=$((SECONDS - t))
# 0, or 143: uvicorn re-raises the SIGTERM it handled once its shutdown is done; 137 = SIGKILL
exit_code=$(dk inspect -f '{{.State.ExitCode}}' "$CID")
case $exit_code in 0|143) ;; *) fail "the server exited $exit_code on stop (137: killed after the ${GRACE} grace period)";; esac
compose start >/dev/null 2>&1 || fail "compose start"
wait_healthy "$CID" >/dev/null || exit 1
stopped=$("$PY" scripts/lab_probe.py "$BASE_URL" status "$LONG_ID") || fail "reading run $LONG_ID"
# the server's own shutdown says "shut down"; a run found active at the next start says "stopped"
echo "$stopped" | grep -q '"status": "interrupted".*shut down' \
  || fail "the running run was not marked interrupted by the server's shutdown: $stopped"
say "stop: took ${STOP_S}s (grace ${GRACE}), server exited $exit_code, no SIGKILL; running run $LONG_ID marked interrupted"

compose down -v >/dev/null 2>&1 || fail "compose down -v"
left=$(dk ps -aq --filter "label=com.docker.compose.project=$PROJECT")
vols=$(dk volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
[ -z "$left$vols" ] || fail "left behind after down -v: containers [$left] volumes [$vols]"
say "down -v: no container or volume of the check left"

say "PASSED: image ${SIZE_MB} MB (goal < 1200 MB), built in ${BUILD_S}s, healthy ${HEALTHY_S}s after up;" \
  "lecture run streamed inside the container: ${ROWS} rows to finished/completed;" \
  "kept across restart; stop in ${STOP_S}s marked the running run interrupted"
