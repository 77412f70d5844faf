#!/usr/bin/env bats
# scripts/sandbox.sh, the README's way to try pgk8s without a cluster: up, env, down.

load test_helper

setup() {
    sim_setup
    export PGK8S_SANDBOX_DIR="$TEST_TMP/sandbox"
}

teardown() {
    bash "$REPO/scripts/sandbox.sh" down >/dev/null 2>&1 || true
    sim_teardown
}

@test "the sandbox starts, serves a deploy through its env, and down stops its servers" {
    run --separate-stderr bash "$REPO/scripts/sandbox.sh" up
    assert_status 0
    run --separate-stderr bash "$REPO/scripts/sandbox.sh" env
    assert_status 0
    assert_contains "$output" "export PGK8S_SIM_DIR=$PGK8S_SANDBOX_DIR/state"
    eval "$output"
    assert_equal "$(command -v kubectl)" "$PGK8S_SANDBOX_DIR/bin/kubectl"
    run --separate-stderr "$PGK8S" deploy --timeout 60s -o json
    assert_status 0
    assert_equal "$(json_get "$output" .migrations.current_version)" 7
    run --separate-stderr bash "$REPO/scripts/sandbox.sh" down
    assert_status 0
    [[ ! -e $PGK8S_SANDBOX_DIR ]] || _fail "the sandbox directory is still there"
    run pgrep -f "$PGK8S_SANDBOX_DIR"
    [[ "$status" -ne 0 ]] || _fail "a server of the sandbox still runs: $output"
}

@test "an unknown sandbox command is a usage error" {
    run bash "$REPO/scripts/sandbox.sh" nonsense
    assert_status 64
    assert_contains "$output" "usage: scripts/sandbox.sh demo|up|env|down"
}
