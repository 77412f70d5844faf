#!/usr/bin/env bats
# `pgk8s undeploy` from the user's side: data stays unless asked for and confirmed.

load test_helper

# Prints the names of the objects of KIND in namespace learnflow, one a line.
names_of() {
    kubectl get "$1" -n learnflow -o json |
        python3 -c 'import json,sys; [print(i["metadata"]["name"]) for i in json.load(sys.stdin)["items"]]'
}

@test "undeploy uninstalls the release and keeps the volume claim and the Secret" {
    deploy_ok --skip-migrations
    run --separate-stderr pgk8s undeploy
    assert_status 0
    assert_contains "$output" "uninstall release postgresql"
    assert_contains "$output" "kept: volume claim data-postgresql-0"
    run helm status postgresql -n learnflow
    [[ "$status" -ne 0 ]] || _fail "the release is still installed"
    assert_equal "$(names_of pvc)" data-postgresql-0
    assert_equal "$(names_of secrets)" postgresql-credentials
    assert_equal "$(names_of pods)" ""
}

@test "undeploy -o json lists what it did and what it kept" {
    deploy_ok --skip-migrations
    run --separate-stderr pgk8s undeploy -o json
    assert_status 0
    assert_json_doc "$output"
    assert_equal "$(json_get "$output" .release_found)" true
    assert_equal "$(json_get "$output" .steps[0].action)" "uninstall release"
    assert_contains "$(json_get "$output" .kept)" data-postgresql-0
}

@test "a redeploy after undeploy finds the kept data" {
    deploy_ok
    # The simulator runs with synchronous_commit = off and stops its servers with
    # `pg_ctl -m immediate`: make this commit durable before the pod goes away.
    run sim_sql learnflow postgresql-0 learnflow \
        "set synchronous_commit = on; insert into users (username, email) values ('kept', 'kept@example.com');"
    assert_status 0
    run --separate-stderr pgk8s undeploy
    assert_status 0
    deploy_ok -o json
    assert_equal "$(json_get "$output" .secret_action)" reused
    run sim_sql learnflow postgresql-0 learnflow "select username from users;"
    assert_equal "$output" kept
}

@test "undeploy --delete-pvc without --yes is refused (exit 9) and nothing is done" {
    deploy_ok --skip-migrations
    clear_calls
    run --separate-stderr pgk8s undeploy --delete-pvc
    assert_status 9
    assert_contains "$stderr" "--yes"
    assert_equal "$(mutating_calls)" ""
    run helm status postgresql -n learnflow
    assert_status 0
    assert_equal "$(names_of pvc)" data-postgresql-0
}

@test "undeploy --delete-pvc --yes removes the release, the volume claim and the Secret" {
    deploy_ok --skip-migrations
    run --separate-stderr pgk8s undeploy --delete-pvc --yes
    assert_status 0
    assert_contains "$output" "delete volume claim data-postgresql-0"
    run helm status postgresql -n learnflow
    [[ "$status" -ne 0 ]] || _fail "the release is still installed"
    assert_equal "$(names_of pvc)" ""
    assert_equal "$(names_of secrets)" ""
}

@test "undeploy of a release that is not installed exits 0 and says so" {
    run --separate-stderr pgk8s undeploy
    assert_status 0
    assert_contains "$output" "is not installed"
    run --separate-stderr pgk8s undeploy -o json
    assert_status 0
    assert_equal "$(json_get "$output" .release_found)" false
    assert_equal "$(json_get "$output" .steps)" "[]"
}

@test "undeploy --dry-run makes no mutating calls" {
    deploy_ok --skip-migrations
    clear_calls
    run --separate-stderr pgk8s undeploy --delete-pvc --delete-namespace --dry-run
    assert_status 0
    assert_contains "$output" "nothing was changed"
    assert_contains "$output" "uninstall release postgresql"
    assert_contains "$output" "delete volume claim data-postgresql-0"
    assert_equal "$(mutating_calls)" ""
    run helm status postgresql -n learnflow
    assert_status 0
    assert_equal "$(names_of pvc)" data-postgresql-0
}

@test "undeploy --delete-namespace --yes removes a namespace pgk8s created" {
    deploy_ok --skip-migrations
    run --separate-stderr pgk8s undeploy --delete-pvc --delete-namespace --yes
    assert_status 0
    assert_contains "$output" "delete namespace learnflow"
    run kubectl get namespace/learnflow --ignore-not-found -o json
    assert_status 0
    assert_equal "$output" ""
}

@test "undeploy --delete-namespace refuses a namespace pgk8s did not create (exit 9)" {
    echo '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shared"}}' |
        kubectl apply -f - >/dev/null
    deploy_ok -n shared --skip-migrations
    run --separate-stderr pgk8s undeploy -n shared --delete-namespace --yes
    assert_status 9
    assert_contains "$stderr" "was not created by pgk8s"
    run kubectl get namespace/shared -o json
    assert_status 0
}

@test "undeploy against an unreachable API server is exit 2" {
    PGK8S_FAKE_FAULTS=api-down run --separate-stderr pgk8s undeploy --delete-pvc --yes
    assert_status 2
    assert_contains "$stderr" "cluster not reachable"
}

@test "two releases in one namespace: undeploy --delete-pvc of one keeps the other's volume" {
    deploy_ok --skip-migrations
    deploy_ok --skip-migrations --release postgresql-test
    run --separate-stderr pgk8s undeploy --delete-pvc --yes
    assert_status 0
    assert_equal "$(names_of pvc)" data-postgresql-test-0
    run --separate-stderr pgk8s verify --release postgresql-test
    assert_status 0
}
