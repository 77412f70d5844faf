#!/usr/bin/env bats
# `pgk8s migrate` and `pgk8s seed` from the user's side, on a deploy made with --skip-migrations.

load test_helper

setup() {
    # A deployed but empty database.
    sim_setup
    deploy_ok --skip-migrations
    clear_calls
}

# The versions recorded in pgk8s.schema_history, comma separated.
history() {
    sim_sql learnflow postgresql-0 learnflow \
        "select coalesce(string_agg(version::text, ',' order by version), '') from pgk8s.schema_history;"
}

@test "migrate -o json applies the 7 LearnFlow migrations in one kubectl exec" {
    run --separate-stderr pgk8s migrate -o json
    assert_status 0
    assert_json_doc "$output"
    assert_equal "$(json_len "$output" .applied)" 7
    assert_equal "$(json_get "$output" .current_version)" 7
    assert_equal "$(json_get "$output" .applied[0].file)" 001_initial.up.sql
    assert_equal "$(count_calls kubectl exec)" 1
    assert_equal "$(history)" "1,2,3,4,5,6,7"
}

@test "a second migrate has nothing to do" {
    run --separate-stderr pgk8s migrate
    assert_status 0
    run --separate-stderr pgk8s migrate
    assert_status 0
    assert_contains "$output" "Nothing to do"
    run --separate-stderr pgk8s migrate -o json
    assert_status 0
    assert_equal "$(json_len "$output" .applied)" 0
}

@test "migrate status -o json shows 7 applied" {
    run --separate-stderr pgk8s migrate status -o json
    assert_status 0
    assert_equal "$(json_get "$output" .applied)" 0
    assert_equal "$(json_get "$output" .current_version)" null
    run --separate-stderr pgk8s migrate
    assert_status 0
    run --separate-stderr pgk8s migrate status -o json
    assert_status 0
    assert_json_doc "$output"
    assert_equal "$(json_get "$output" .applied)" 7
    assert_equal "$(json_get "$output" .current_version)" 7
    assert_equal "$(json_get "$output" .drifted)" 0
    assert_equal "$(json_len "$output" .migrations)" 7
    assert_equal "$(json_get "$output" .migrations[6].state)" applied
}

@test "migrate status --exit-code is 0 when current and 7 when a migration is pending" {
    run --separate-stderr pgk8s migrate status --exit-code
    assert_status 7
    run --separate-stderr pgk8s migrate
    assert_status 0
    run --separate-stderr pgk8s migrate status --exit-code
    assert_status 0
    run --separate-stderr pgk8s migrate down --steps 1 --yes
    assert_status 0
    assert_contains "$output" "007_curriculum.down.sql"
    assert_equal "$(history)" "1,2,3,4,5,6"
    run --separate-stderr pgk8s migrate status --exit-code
    assert_status 7
}

@test "migrate down without --yes is refused (exit 9) and changes nothing" {
    run --separate-stderr pgk8s migrate
    assert_status 0
    clear_calls
    run --separate-stderr pgk8s migrate down --steps 1
    assert_status 9
    assert_contains "$stderr" "--yes"
    assert_equal "$(mutating_calls)" ""
    assert_equal "$(history)" "1,2,3,4,5,6,7"
}

@test "a broken migration in a custom directory fails with exit 7 naming the file" {
    local dir="$TEST_TMP/migrations"
    mkdir "$dir"
    printf 'create table alpha (id int);\n' >"$dir/001_alpha.sql"
    printf 'create table beta (id int);\nselect * from no_such_table;\n' >"$dir/002_beta.sql"
    printf 'create table gamma (id int);\n' >"$dir/003_gamma.sql"
    run --separate-stderr pgk8s migrate -m "$dir"
    assert_status 7
    assert_contains "$stderr" "002_beta.sql"
    assert_contains "$stderr" "no_such_table"
    assert_equal "$(history)" "1"
    run sim_sql learnflow postgresql-0 learnflow "select to_regclass('public.beta') is null;"
    assert_equal "$output" t
    # Fixed, the next run resumes where it stopped.
    printf 'create table beta (id int);\n' >"$dir/002_beta.sql"
    run --separate-stderr pgk8s migrate -m "$dir" -o json
    assert_status 0
    assert_equal "$(json_get "$output" .applied[0].file)" 002_beta.sql
    assert_equal "$(history)" "1,2,3"
}

@test "a missing migrations directory is a usage error (exit 64)" {
    run --separate-stderr pgk8s migrate -m "$TEST_TMP/nowhere"
    assert_status 64
    assert_contains "$stderr" "nowhere"
}

@test "seed before migrate is refused with a pointer to migrate" {
    run --separate-stderr pgk8s seed
    assert_status 7
    assert_contains "$stderr" "pgk8s migrate"
}

@test "seed twice gives identical table counts and 5 users" {
    run --separate-stderr pgk8s migrate
    assert_status 0
    run --separate-stderr pgk8s seed -o json
    assert_status 0
    assert_json_doc "$output"
    local first
    first="$(json_get "$output" .tables)"
    run --separate-stderr pgk8s seed -o json
    assert_status 0
    assert_equal "$(json_get "$output" .tables)" "$first"
    run sim_sql learnflow postgresql-0 learnflow "select count(*) from users;"
    assert_status 0
    assert_equal "$output" 5
}

@test "migrate against a namespace without a pod is exit 8" {
    run --separate-stderr pgk8s migrate -n elsewhere --wait 1s
    assert_status 8
    assert_contains "$stderr" "database connection failed"
    assert_contains "$stderr" "namespace elsewhere"
}
