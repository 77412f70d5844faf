#!/usr/bin/env bats
# `pgk8s verify` from the user's side: the checklist, its JSON, and the documented exit codes
# (0 healthy, 2 cluster unreachable, 5 unhealthy, 8 only the database unreachable).

load test_helper

@test "a healthy deploy verifies with --check-schema (exit 0)" {
    deploy_ok
    run --separate-stderr pgk8s verify --check-schema -o json
    assert_status 0
    assert_json_doc "$output"
    assert_equal "$(json_get "$output" .healthy)" true
    assert_equal "$(json_get "$output" .release_status)" deployed
    assert_equal "$(json_get "$output" .pods_running)" 1
    assert_equal "$(json_get "$output" .expected_pods)" 1
    assert_equal "$(json_get "$output" .pvc_bound)" true
    assert_equal "$(json_get "$output" .service_present)" true
    assert_equal "$(json_get "$output" .database_connected)" true
    assert_equal "$(json_get "$output" .tables_count)" 6
    assert_equal "$(json_get "$output" .migrations_pending)" 0
    assert_equal "$(json_get "$output" .current_version)" 7
    assert_equal "$(json_get "$output" .issues)" "[]"
}

@test "verify text output is a checklist ending healthy" {
    deploy_ok
    run --separate-stderr pgk8s verify --check-schema
    assert_status 0
    assert_contains "$output" "Release postgresql in namespace learnflow: healthy"
    assert_contains "$output" "database: accepts connections"
    assert_contains "$output" "version 7, 0 pending, 0 drifted"
    assert_not_contains "$output" "FAIL"
}

@test "verify --check-schema before migrations is unhealthy (exit 5, migrations_pending)" {
    deploy_ok --skip-migrations
    run --separate-stderr pgk8s verify --check-schema -o json
    assert_status 5
    assert_equal "$(json_get "$output" .healthy)" false
    assert_equal "$(json_get "$output" .database_connected)" true
    assert_equal "$(json_get "$output" .migrations_pending)" 7
    assert_contains ",$(issue_codes "$output")," ",migrations_pending,"
    # Without --check-schema the schema is not judged.
    run --separate-stderr pgk8s verify -o json
    assert_status 0
    assert_equal "$(json_get "$output" .migrations_pending)" null
}

@test "verify --wait waits out a pod that is briefly not ready" {
    deploy_ok
    pgk8s-sim not-ready learnflow postgresql-0 5
    run --separate-stderr pgk8s verify -o json
    assert_status 5
    assert_contains "$(issue_codes "$output")" not_ready
    run --separate-stderr pgk8s verify --wait 20s -o json
    assert_status 0
    assert_equal "$(json_get "$output" .healthy)" true
    assert_equal "$(json_get "$output" .pods_running)" 1
}

@test "a stopped database with its pod not ready is unhealthy (exit 5)" {
    deploy_ok
    pgk8s-sim db-down learnflow postgresql-0
    run --separate-stderr pgk8s verify -o json
    # Pod problems exist besides the database, so the verdict is 5, not 8.
    assert_status 5
    assert_equal "$(json_get "$output" .database_connected)" false
    assert_equal "$(json_get "$output" .pods_running)" 0
    local codes
    codes="$(issue_codes "$output")"
    assert_contains "$codes" not_ready
    assert_contains "$codes" database_unreachable
}

@test "a wrong password in the Secret is database unreachable only (exit 8)" {
    deploy_ok
    secret_manifest postgresql-credentials learnflow wrong-superuser-pw wrong-app-pw |
        kubectl apply -f - >/dev/null
    run --separate-stderr pgk8s verify -o json
    assert_status 8
    assert_equal "$(json_get "$output" .database_connected)" false
    assert_equal "$(json_get "$output" .pods_running)" 1
    assert_equal "$(issue_codes "$output")" database_unreachable
    assert_contains "$(json_get "$output" .issues[0].message)" "password authentication failed"
    assert_not_contains "$output$stderr" wrong-app-pw
}

@test "verify with no release is unhealthy (exit 5, release_missing)" {
    run --separate-stderr pgk8s verify -o json
    assert_status 5
    assert_json_doc "$output"
    assert_equal "$(json_get "$output" .healthy)" false
    assert_equal "$(json_get "$output" .issues[0].code)" release_missing
    assert_contains "$(json_get "$output" .issues[0].hint)" "pgk8s deploy"
}

@test "verify against an unreachable API server is exit 2" {
    PGK8S_FAKE_FAULTS=api-down run --separate-stderr pgk8s verify
    assert_status 2
    assert_contains "$stderr" "cluster not reachable"
    assert_contains "$stderr" "hint:"
}

@test "verify makes no mutating calls" {
    deploy_ok
    clear_calls
    run --separate-stderr pgk8s verify --check-schema
    assert_status 0
    assert_equal "$(mutating_calls)" ""
}
