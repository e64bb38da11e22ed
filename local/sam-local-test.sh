#!/usr/bin/env bash
# `make sam-local-test`: the real SAM CLI against this project - every function on each of its events/*.json through
# `sam local invoke`, and the three routes through `sam local start-api` - with the committed env file
# (local/sam-env.json) and the project's embedded DynamoDB.
#
# Docker: a running daemon (`docker info` answers: a developer's laptop) is used as it is, with the real Lambda image.
# Without one (a CI machine: root, no daemon, no image registry) the script starts its own dockerd inside a PRIVATE
# network namespace (only `lo` and `docker0` in it: the host's interfaces, routes and iptables are never touched, and
# nothing inside can reach the outside) and builds a stand-in for the Lambda python3.13 image offline: Debian minbase
# + this machine's CPython 3.13 + awslambdaric from PyPI (SAM adds its own runtime interface emulator on top).
# Everything it starts is stopped on exit; every step is bounded by a timeout.
#
# Called by the Makefile with SAM_VERSION, UV, PY313 (a CPython 3.13) and the project's .venv installed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
: "${SAM_VERSION:?run it as make sam-local-test}" "${UV:?}" "${PY313:?}"
W=${SAM_LOCAL_WORK:-$ROOT/.aws-sam/sam-local-test}
PY=$ROOT/.venv/bin/python
ENV_FILE=$ROOT/local/sam-env.json
export SAM_CLI_TELEMETRY=0 AWS_REGION=${AWS_REGION:-us-east-1} AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-local} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-local}
# `sam build` runs pip with the python3.13 on PATH
export PATH="$(dirname "$PY313"):$PATH"
case "$(uname -m)" in
    x86_64) ARCH=x86_64 ;;
    aarch64 | arm64) ARCH=arm64 ;;
    *) echo "sam-local-test: unsupported machine $(uname -m)" >&2; exit 2 ;;
esac
IMAGE=public.ecr.aws/lambda/python:3.13-$ARCH   # what SAM CLI runs python3.13 functions in
T0=$(date +%s)
step() { echo "[sam-local-test $(($(date +%s) - T0))s] $*"; }
fail() { echo "sam-local-test: FAILED: $*" >&2; exit 1; }
mkdir -p "$W"

PIDS=()
OWN_DAEMON=""
IN_NS=()   # prefix that runs a command where the daemon's network is (the private namespace, or nothing)
cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill -TERM -- "$pid" 2>/dev/null; done
    sleep 2
    for pid in "${PIDS[@]}"; do kill -KILL -- "$pid" 2>/dev/null; done
    if [ -n "$OWN_DAEMON" ]; then
        docker ps -q 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1
        [ -f "$W/dockerd.pid" ] && kill "$(cat "$W/dockerd.pid")" 2>/dev/null
        for _ in $(seq 100); do [ -f "$W/dockerd.pid" ] && kill -0 "$(cat "$W/dockerd.pid")" 2>/dev/null || break; sleep 0.2; done
        umount "$W/netns" 2>/dev/null
    fi
    step "stopped everything it started"
}
trap cleanup EXIT

# ------------------------------------------------------------------------------------------------ 1. the SAM CLI
step "SAM CLI $SAM_VERSION (uv tool, Python 3.13)"
timeout 300 "$UV" tool run --python "$PY313" --from "aws-sam-cli==$SAM_VERSION" sam --version \
    || fail "could not install aws-sam-cli==$SAM_VERSION with uv"

# ------------------------------------------------------------------------------------------------ 2. a Docker daemon
if timeout 20 docker info >/dev/null 2>&1; then
    step "using the running Docker daemon (the real Lambda image; SAM pulls it when missing)"
    PULL=()
else
    step "no Docker daemon: starting a private one in its own network namespace"
    [ "$(id -u)" = 0 ] || fail "no Docker daemon answers, and starting a private one needs root (or start Docker)"
    for tool in unshare nsenter ip mount; do
        command -v "$tool" >/dev/null || fail "no Docker daemon, and '$tool' is missing to start a private one"
    done
    if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
        command -v apt-get >/dev/null || fail "no Docker daemon, and no apt-get to install docker.io + debootstrap"
        step "apt-get install docker.io debootstrap"
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends docker.io debootstrap \
            >"$W/apt.log" 2>&1 || { tail -20 "$W/apt.log"; fail "apt-get install docker.io debootstrap"; }
    fi
    touch "$W/netns"
    umount "$W/netns" 2>/dev/null || true
    unshare --net="$W/netns" true
    IN_NS=(nsenter --net="$W/netns")
    "${IN_NS[@]}" ip link set lo up
    mkdir -p "$W/docker-data" "$W/docker-exec"
    export DOCKER_HOST="unix://$W/docker.sock"
    OWN_DAEMON=1
    setsid "${IN_NS[@]}" dockerd --data-root "$W/docker-data" --exec-root "$W/docker-exec" --pidfile "$W/dockerd.pid" \
        -H "$DOCKER_HOST" --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
        --storage-driver=overlay2 >"$W/dockerd.log" 2>&1 &
    for _ in $(seq 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
    docker info >/dev/null 2>&1 || { tail -20 "$W/dockerd.log"; fail "dockerd did not start"; }
    PULL=(--skip-pull-image)
    if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
        step "building a stand-in for $IMAGE offline (debootstrap + CPython 3.13 + awslambdaric)"
        PY313_PREFIX=$("$PY313" -c 'import sys; print(sys.base_prefix)')
        MIRROR=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\/debian\/\{0,1\}\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)}
        MIRROR=${MIRROR:-$(sed -n 's/^deb \(http[^ ]*\/debian\/\{0,1\}\) .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n 1)}
        [ -n "$MIRROR" ] || fail "no Debian mirror found in apt's sources (set DEBIAN_MIRROR)"
        if [ ! -x "$W/rootfs/bin/sh" ]; then
            rm -rf "$W/rootfs"
            timeout 600 debootstrap --variant=minbase \
                --include=libssl3,libffi8,libsqlite3-0,libbz2-1.0,liblzma5,zlib1g,libexpat1,libuuid1,libreadline8,libncursesw6,ca-certificates \
                bookworm "$W/rootfs" "$MIRROR" >"$W/debootstrap.log" 2>&1 \
                || { tail -20 "$W/debootstrap.log"; rm -rf "$W/rootfs"; fail "debootstrap"; }
        fi
        R="$W/imgroot"
        rm -rf "$R" && cp -a "$W/rootfs" "$R"
        rm -rf "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/usr/share/locale/* "$R"/var/cache/apt/archives/*.deb \
            "$R"/var/lib/apt/lists/*
        mkdir -p "$R"/var/lang/bin "$R"/var/lang/lib "$R"/var/runtime "$R"/var/task "$R"/opt
        cp -a "$PY313_PREFIX/bin/python3.13" "$R"/var/lang/bin/
        ln -s python3.13 "$R"/var/lang/bin/python3
        cp -a "$PY313_PREFIX"/lib/libpython3.13.so* "$R"/var/lang/lib/ 2>/dev/null || true
        tar -C "$PY313_PREFIX/lib" -c --exclude=python3.13/test --exclude=python3.13/idlelib \
            --exclude=python3.13/tkinter --exclude=python3.13/turtledemo --exclude='python3.13/site-packages/*' \
            --exclude='python3.13/config-3.13-*' python3.13 | tar -C "$R"/var/lang/lib -x
        timeout 300 "$UV" pip install --quiet --python "$PY313" --target "$R"/var/runtime --only-binary :all: \
            awslambdaric boto3 >"$W/pip.log" 2>&1 || { tail -20 "$W/pip.log"; fail "pip install awslambdaric boto3"; }
        cat >"$R"/var/runtime/bootstrap <<'BOOT'
#!/bin/sh
# SAM's runtime interface emulator starts this for a zip function: awslambdaric serves $_HANDLER.
export AWS_EXECUTION_ENV=AWS_Lambda_python3.13
export PYTHONPATH="/var/task:/opt/python/lib/python3.13/site-packages:/opt/python:/var/runtime${PYTHONPATH:+:$PYTHONPATH}"
exec /var/lang/bin/python3.13 -m awslambdaric "${_HANDLER:-$AWS_LAMBDA_FUNCTION_HANDLER}"
BOOT
        printf '#!/bin/sh\nexport _HANDLER="$1"\n[ -z "$AWS_LAMBDA_RUNTIME_API" ] && exec /usr/local/bin/aws-lambda-rie /var/runtime/bootstrap\nexec /var/runtime/bootstrap\n' \
            >"$R"/lambda-entrypoint.sh
        chmod +x "$R"/var/runtime/bootstrap "$R"/lambda-entrypoint.sh
        tar -C "$R" -c . | docker import -c 'ENV LANG=en_US.UTF-8' -c 'ENV TZ=:/etc/localtime' \
            -c 'ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin' \
            -c 'ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib' \
            -c 'ENV LAMBDA_TASK_ROOT=/var/task' -c 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' -c 'WORKDIR /var/task' \
            -c 'ENTRYPOINT ["/lambda-entrypoint.sh"]' - "$IMAGE" >/dev/null
        rm -rf "$R"
    fi
fi
# The containers reach the embedded DynamoDB as host.docker.internal (local/sam-env.json), the daemon's host gateway.
SAM_LOCAL_ARGS=(--env-vars "$ENV_FILE" --add-host host.docker.internal:host-gateway "${PULL[@]}")
SAM=("${IN_NS[@]}" "$UV" tool run --offline --python "$PY313" --from "aws-sam-cli==$SAM_VERSION" sam)

# ------------------------------------------------------------------------------------------------ 3. sam build
step "sam build ($ARCH)"
(cd "$ROOT" && timeout 600 make --no-print-directory smoke-build >"$W/build.log" 2>&1) \
    || { tail -30 "$W/build.log"; fail "make smoke-build"; }
BUILT=$ROOT/.aws-sam/smoke/$ARCH/template.yaml

# ------------------------------------------------------------------------------------------------ 4. DynamoDB
step "the embedded DynamoDB for the containers (table from template.yaml, characters imported)"
if [ -n "$OWN_DAEMON" ]; then
    DDB_HOST=0.0.0.0   # inside the private namespace: reachable from its containers only
else
    # A real daemon's containers reach the host through its bridge gateway.
    DDB_HOST=$(docker network inspect bridge --format '{{(index .IPAM.Config 0).Gateway}}' 2>/dev/null || true)
    DDB_HOST=${DDB_HOST:-0.0.0.0}
fi
"${IN_NS[@]}" "$PY" -m aurora_local.sam_local dynamodb --host "$DDB_HOST" --port 8000 >"$W/dynamodb.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 150); do grep -q "dynamodb ready" "$W/dynamodb.log" && break; sleep 0.2; done
grep -q "dynamodb ready" "$W/dynamodb.log" || { cat "$W/dynamodb.log"; fail "embedded DynamoDB did not start (port 8000 busy?)"; }

# ------------------------------------------------------------------------------------------------ 5. sam local invoke
# invoke FUNCTION EVENT_FILE EXPECTED: EXPECTED is an HTTP status, or JSON the result must equal (an object: contain).
invoke() {
    local function=$1 event=$2 expected=$3 name
    name=$(basename "$event" .json)
    local t=$(date +%s)
    timeout 180 "${SAM[@]}" local invoke "$function" -t "$BUILT" -e "$event" "${SAM_LOCAL_ARGS[@]}" \
        >"$W/invoke-$name.out" 2>"$W/invoke-$name.err" || { tail -30 "$W/invoke-$name.err"; fail "sam local invoke $function -e $event"; }
    "$PY" - "$W/invoke-$name.out" "$expected" <<'PY' || { tail -30 "$W/invoke-$name.err"; fail "$function on $event: unexpected answer (above)"; }
import json, sys
lines = [line for line in open(sys.argv[1]).read().splitlines() if line.strip()]
result = json.loads(lines[-1]) if lines else None
expected = sys.argv[2]
if expected.isdigit():
    ok = isinstance(result, dict) and result.get("statusCode") == int(expected)
else:
    want = json.loads(expected)
    ok = result == want or (
        isinstance(want, dict) and isinstance(result, dict) and all(result.get(k) == v for k, v in want.items())
    )
print(("   ok " if ok else "   WRONG ") + json.dumps(result)[:160])
sys.exit(0 if ok else 1)
PY
    echo "   ($function, $(($(date +%s) - t)) s)"
}
if [ "${SAM_LOCAL_SKIP_INVOKE:-}" != 1 ]; then   # (a developer iterating on start-api only)
step "sam local invoke: every events/*.json"
invoke InitializeChatFunction "$ROOT/events/initialize_chat.json" 201
invoke InitializeChatFunction "$ROOT/events/initialize_chat_idempotent.json" 201
cp "$ROOT/events/initialize_chat_idempotent.json" "$W/initialize_chat_idempotent_replay.json"
invoke InitializeChatFunction "$W/initialize_chat_idempotent_replay.json" 200   # the same key again: a replay
invoke ListChatsFunction "$ROOT/events/list_chats.json" 200
invoke ListChatsFunction "$ROOT/events/list_chats_with_cursor.json" 200   # signed with local-dev-cursor-secret
invoke DeleteChatFunction "$ROOT/events/delete_chat.json" 404   # its chat id does not exist in a fresh table
invoke DeleteChatFunction "$ROOT/events/delete_chat_missing.json" 404
invoke DeleteChatFunction "$ROOT/events/delete_chat_bad_id.json" 400
# delete_chat.json on the chat the replay named: 200
"$PY" - "$ROOT/events/delete_chat.json" "$W/invoke-initialize_chat_idempotent_replay.out" "$W/delete_chat_created.json" <<'PY'
import json, sys
event = json.load(open(sys.argv[1]))
created = json.loads(json.loads(open(sys.argv[2]).read().splitlines()[-1])["body"])
chat = str(created["chatId"])
event["pathParameters"]["chatId"] = chat
event["rawPath"] = event["rawPath"].rsplit("/", 1)[0] + "/" + chat
json.dump(event, open(sys.argv[3], "w"))
PY
invoke DeleteChatFunction "$W/delete_chat_created.json" 200
for event in cleanup_stream_delete cleanup_stream_ttl cleanup_stream_mixed; do
    invoke ChatCleanupFunction "$ROOT/events/$event.json" '{"batchItemFailures": []}'
done
invoke ChatCleanupFunction "$ROOT/events/cleanup_user_deleted.json" '{"userId": "alice", "complete": true}'
for event in "$ROOT"/events/*.json; do   # a new event file must get a line above
    grep -q "invoke-$(basename "$event" .json).out" <(ls "$W") 2>/dev/null || fail "events/$(basename "$event") is not invoked"
done
fi

# ------------------------------------------------------------------------------------------------ 6. start-api
step "sam local start-api (derived template: the local JWT check in front of each API function)"
"$PY" -m aurora_local.sam_local derive "$BUILT" "$W/start-api/template.yaml"
PORT=3000
[ -n "$OWN_DAEMON" ] || PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
setsid "${SAM[@]}" local start-api \
    -t "$W/start-api/template.yaml" "${SAM_LOCAL_ARGS[@]}" --host 127.0.0.1 --port "$PORT" >"$W/start-api.log" 2>&1 &
PIDS+=("-$!")   # its own process group (uv + sam)
for _ in $(seq 300); do "${IN_NS[@]}" curl -s -o /dev/null "127.0.0.1:$PORT/" && break; sleep 0.2; done
"${IN_NS[@]}" curl -s -o /dev/null "127.0.0.1:$PORT/" || { tail -30 "$W/start-api.log"; fail "start-api did not listen"; }
TOKEN=$(cd "$ROOT" && "$PY" -m aurora_local token --user sam-local-user --name Sam | tail -n 1)
# call METHOD PATH EXPECTED_STATUS [TOKEN] -> body in $W/body, content type checked for errors
call() {
    local method=$1 path=$2 expected=$3 token=${4:-} status type
    local auth=()
    [ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
    read -r status type < <("${IN_NS[@]}" curl -s --max-time 120 -o "$W/body" -w '%{http_code} %{content_type}\n' \
        -X "$method" "${auth[@]}" "127.0.0.1:$PORT$path")
    echo "   $method $path -> $status $type $(head -c 160 "$W/body")"
    [ "$status" = "$expected" ] || { tail -30 "$W/start-api.log"; fail "$method $path: $status, expected $expected"; }
    if [ "$status" -ge 400 ]; then
        [ "${type%%;*}" = application/problem+json ] || fail "$method $path: $type is not application/problem+json"
    fi
}
call GET /chats 401
call GET /chats 401 "not-a-token"
call POST /characters/330905/chats 201 "$TOKEN"
CHAT=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["chatId"])' "$W/body")
call GET /chats 200 "$TOKEN"
"$PY" -c 'import json,sys; assert int(sys.argv[2]) in json.load(open(sys.argv[1]))["chatIds"]' "$W/body" "$CHAT" \
    || fail "GET /chats does not list the chat just created"
call GET /chats/pages 200 "$TOKEN"   # the same list, for the SDK's chats.listPages
"$PY" -c 'import json,sys; assert int(sys.argv[2]) in json.load(open(sys.argv[1]))["chatIds"]' "$W/body" "$CHAT" \
    || fail "GET /chats/pages does not list the chat just created"
call DELETE "/chats/$CHAT" 200 "$TOKEN"
call GET /chats 200 "$TOKEN"
"$PY" -c 'import json,sys; assert int(sys.argv[2]) not in json.load(open(sys.argv[1]))["chatIds"]' "$W/body" "$CHAT" \
    || fail "GET /chats still lists the deleted chat"
call DELETE "/chats/$CHAT" 200 "$TOKEN"   # a repeat of the caller's own delete: the same 200 (retry-safe)
step "passed"
