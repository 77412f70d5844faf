#!/usr/bin/env bats
# `pgk8s deploy` from the user's side: reports, idempotence, dry run, failures and secrecy.

load test_helper

@test "deploy -o json creates the Secret, installs the release and migrates to version 7" {
    run --separate-stderr pgk8s deploy -o json --timeout 60s
    assert_status 0
    assert_json_doc "$output"
    assert_equal "$(json_get "$output" .secret_action)" created
    assert_equal "$(json_get "$output" .release_action)" installed
    assert_equal "$(json_get "$output" .host)" postgresql.learnflow.svc.cluster.local
    assert_equal "$(json_get "$output" .port)" 5432
    assert_equal "$(json_get "$output" .migrations.current_version)" 7
    # The database really holds the LearnFlow schema.
    run sim_sql learnflow postgresql-0 learnflow \
        "select count(*) from information_schema.tables where table_schema = 'public';"
    assert_status 0
    assert_equal "$output" 6
}

@test "deploy text output names the host and how to read the password" {
    run --separate-stderr pgk8s deploy --timeout 60s
    assert_status 0
    assert_contains "$output" "postgresql.learnflow.svc.cluster.local"
    assert_contains "$output" "kubectl get secret postgresql-credentials"
}

@test "a second deploy changes nothing" {
    deploy_ok
    clear_calls
    run --separate-stderr pgk8s deploy -o json --timeout 60s
    assert_status 0
    assert_equal "$(json_get "$output" .release_action)" unchanged
    assert_equal "$(json_get "$output" .secret_action)" reused
    assert_equal "$(json_get "$output" .migrations.current_version)" 7
    assert_equal "$(count_calls helm upgrade)" 0
    assert_equal "$(count_calls kubectl apply)" 0
}

@test "deploy --dry-run prints the plan and calls nothing but helm version" {
    run --separate-stderr pgk8s deploy --dry-run --storage-size 20Gi
    assert_status 0
    assert_contains "$output" "Dry run: nothing was changed"
    assert_contains "$output" "helm upgrade --install --version=17.1.0"
    assert_contains "$output" "-- postgresql oci://registry-1.docker.io/bitnamicharts/postgresql"
    assert_contains "$output" "existingSecret: postgresql-credentials"
    assert_contains "$output" "size: 20Gi"
    run calls
    assert_status 0
    while IFS= read -r call; do
        [[ -z "$call" || "$call" == "helm version"* ]] || _fail "unexpected call: $call"
    done <<<"$output"
    run kubectl get namespace/learnflow --ignore-not-found -o json
    assert_status 0
    assert_equal "$output" ""
}

@test "deploy --dry-run -o json is one JSON document" {
    run --separate-stderr pgk8s deploy --dry-run -o json
    assert_status 0
    assert_json_doc "$output"
    assert_equal "$(json_get "$output" .dry_run)" true
    assert_equal "$(json_get "$output" .values.auth.existingSecret)" postgresql-credentials
}

@test "an image that cannot be pulled times out (exit 4) with a hint about --image" {
    PGK8S_FAKE_FAULTS=image-pull-backoff run --separate-stderr pgk8s deploy --timeout 2s
    assert_status 4
    assert_contains "$stderr" "cannot pull its image"
    assert_contains "$stderr" "hint:"
    assert_contains "$stderr" "--image"
}

@test "a volume claim that stays Pending is insufficient resources (exit 6)" {
    PGK8S_FAKE_FAULTS=pvc-pending run --separate-stderr pgk8s deploy --timeout 2s
    assert_status 6
    assert_contains "$stderr" "data-postgresql-0"
    assert_contains "$stderr" "Pending"
}

@test "an unreachable API server is exit 2 and nothing is changed" {
    PGK8S_FAKE_FAULTS=api-down run --separate-stderr pgk8s deploy --timeout 2s
    assert_status 2
    assert_contains "$stderr" "cluster not reachable"
    assert_contains "$stderr" "hint:"
    assert_equal "$(mutating_calls)" ""
}

@test "deploy -o json on failure prints nothing to stdout but explains on stderr" {
    PGK8S_FAKE_FAULTS=api-down run --separate-stderr pgk8s deploy -o json --timeout 2s
    assert_status 2
    [[ -z "$output" ]] || json_get "$output" . >/dev/null || _fail "stdout is neither empty nor JSON"
    assert_contains "$stderr" "error:"
}

@test "an invalid namespace is a usage error (exit 64) before any call" {
    run --separate-stderr pgk8s deploy -n Not_A_Namespace
    assert_status 64
    assert_contains "$stderr" "Not_A_Namespace"
    assert_equal "$(calls)" ""
}

@test "an unknown flag is a usage error (exit 64)" {
    run --separate-stderr pgk8s deploy --no-such-flag
    assert_status 64
    assert_equal "$(calls)" ""
}

@test "no generated password ever appears in output or in any tool's arguments" {
    run --separate-stderr pgk8s deploy -o json -v --timeout 60s
    assert_status 0
    local outputs="$output$stderr"
    run --separate-stderr pgk8s info -o json -vv
    assert_status 0
    outputs+="$output$stderr"
    run --separate-stderr pgk8s verify --check-schema
    assert_status 0
    outputs+="$output$stderr"
    local argv
    argv="$(calls)"
    [[ -n "$argv" ]] || _fail "no calls recorded"
    local secret_json key value encoded
    secret_json="$(kubectl get secret/postgresql-credentials -n learnflow -o json)"
    for key in password postgres-password; do
        encoded="$(json_get "$secret_json" ".data.$key")"
        value="$(printf '%s' "$encoded" | base64 -d)"
        [[ ${#value} -ge 16 ]] || _fail "password $key is too short: ${#value}"
        assert_not_contains "$outputs" "$value"
        assert_not_contains "$outputs" "$encoded"
        assert_not_contains "$argv" "$value"
        assert_not_contains "$argv" "$encoded"
    done
    # info shows it only when asked.
    run --separate-stderr pgk8s info --show-password -o json
    assert_status 0
    assert_contains "$(json_get "$output" .url)" "$(secret_value postgresql-credentials password)"
}
