#!/usr/bin/env bats
# Lifecycle and the second engine from the user's side: grow the volume, move to another
# PostgreSQL major, run a CloudNativePG cluster, and move a release there.

load test_helper

users() {
    sim_sql learnflow "$1" learnflow "select count(*) from users;"
}

@test "resize grows the volume in place and the release records it" {
    deploy_ok --seed --storage-class expandable --storage-size 1Gi
    run --separate-stderr pgk8s resize --storage-size 2Gi --timeout 60s
    assert_status 0
    assert_contains "$output" "Resized the volumes of release postgresql to 2Gi; pods restarted: none."
    run --separate-stderr kubectl get pvc/data-postgresql-0 -n learnflow -o json
    assert_equal "$(json_get "$output" .status.capacity.storage)" 2Gi
    run users postgresql-0
    assert_equal "$output" 5
}

@test "upgrade moves a seeded database to the next PostgreSQL major and keeps every row" {
    majors="$(pgk8s-sim majors | awk '{print $1}' | tail -2 | tr '\n' ' ')"
    read -r old new <<<"$majors"
    [[ -n "$new" ]] || skip "one PostgreSQL major only (bash scripts/get-postgres.sh 17 18)"
    deploy_ok --seed --image "bitnamilegacy/postgresql:$old"
    run --separate-stderr pgk8s upgrade --postgres-version "$new" --yes --timeout 120s \
        --backup-dir "$TEST_TMP"
    assert_status 0
    assert_contains "$output" "Upgraded release postgresql from PostgreSQL $old"
    assert_contains "$output" "match the source"
    assert_equal "$(pgk8s-sim major learnflow postgresql-0)" "$new"
    run users postgresql-0
    assert_equal "$output" 5
}

@test "a CloudNativePG cluster runs migrations, seed and verify, and undeploy keeps its data" {
    run --separate-stderr pgk8s operator install
    assert_status 0
    run --separate-stderr pgk8s deploy --engine cnpg --seed --timeout 120s
    assert_status 0
    assert_contains "$output" "CloudNativePG cluster postgresql is ready"
    run --separate-stderr pgk8s verify --check-schema
    assert_status 0
    run --separate-stderr pgk8s undeploy
    assert_status 0
    assert_contains "$output" "hibernate cluster postgresql"
    run --separate-stderr pgk8s deploy --engine cnpg --timeout 120s -o json
    assert_status 0
    assert_equal "$(json_get "$output" .cluster_action)" resumed
    run --separate-stderr pgk8s psql -c "select count(*) from users" -- -At
    assert_equal "$output" 5
}

@test "move copies a Bitnami release into CloudNativePG and the source keeps serving" {
    deploy_ok --seed
    run --separate-stderr pgk8s move --to cnpg --install-operator --timeout 180s
    assert_status 0
    assert_contains "$output" "match the source"
    assert_contains "$output" "pgk8s undeploy -r postgresql"
    run --separate-stderr pgk8s verify
    assert_status 0
    run --separate-stderr pgk8s verify -r postgresql-cnpg
    assert_status 0
}
