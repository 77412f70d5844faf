//! Project hygiene, checked cheaply on every run: module docs, no `unsafe`, no `unwrap()` outside
//! tests, processes spawned only by the process module, stdout written only by the output module, and
//! dependency licenses from an allowlist (`cargo metadata`).

use std::path::{Path, PathBuf};

fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, files: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                files.push((path, text));
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    files.sort();
    files
}

/// The file without its `#[cfg(test)]` module and without comments.
fn production_code(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `code` contains `token` as a whole word (`print!(` but not `eprint!(`).
fn uses(code: &str, token: &str) -> bool {
    code.match_indices(token)
        .any(|(index, _)| !code[..index].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
}

fn name(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn every_module_says_what_it_owns() {
    for (path, text) in sources() {
        assert!(
            text.starts_with("//!"),
            "{} has no //! module doc",
            name(&path)
        );
    }
}

#[test]
fn no_unsafe_no_unwrap_no_leftovers_in_production_code() {
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    assert!(lib.contains("#![forbid(unsafe_code)]"));
    for (path, text) in sources() {
        let code = production_code(&text);
        for banned in [
            ".unwrap()",
            "unsafe {",
            "unsafe fn",
            "unsafe impl",
            "todo!(",
            "dbg!(",
            "unimplemented!(",
        ] {
            assert!(!code.contains(banned), "{} uses {banned}", name(&path));
        }
    }
}

#[test]
fn only_the_process_module_spawns_and_only_output_prints() {
    for (path, text) in sources() {
        let code = production_code(&text);
        let file = name(&path);
        if file != "src/process.rs" {
            for spawn in [
                "tokio::process::Command",
                "std::process::Command",
                "process::Command::new",
            ] {
                assert!(
                    !code.contains(spawn),
                    "{file} spawns a process ({spawn}); use process::Command"
                );
            }
        }
        if file != "src/output.rs" {
            for print in ["println!(", "print!(", "stdout().lock()", "stdout().write"] {
                assert!(
                    !uses(&code, print),
                    "{file} writes stdout ({print}); return a report instead"
                );
            }
        }
    }
}

#[test]
fn dependency_licenses_are_on_the_allowlist() {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let allowed = [
        "MIT",
        "Apache-2.0",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "ISC",
        "Zlib",
        "Unicode-3.0",
        "Unlicense",
        "0BSD",
        "BSL-1.0",
        "Apache-2.0 WITH LLVM-exception",
        "CC0-1.0",
        "MPL-2.0",
    ];
    for package in metadata["packages"].as_array().unwrap() {
        let license = package["license"].as_str().unwrap_or("(none)");
        let acceptable = license
            .split(" OR ")
            .flat_map(|alternative| alternative.split('/'))
            .any(|alternative| {
                let alternative = alternative.trim_matches(|c| c == '(' || c == ')' || c == ' ');
                alternative.split(" AND ").all(|part| {
                    allowed.contains(&part.trim_matches(|c| c == '(' || c == ')' || c == ' '))
                })
            });
        assert!(
            acceptable,
            "{} {} has license {license}",
            package["name"], package["version"]
        );
    }
}

/// The module a source file is (`kube`, `commands::deploy`), from its path under src/.
fn module_of(path: &Path) -> String {
    let relative = path
        .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
        .unwrap()
        .with_extension("");
    let name = relative.display().to_string().replace('/', "::");
    name.strip_suffix("::mod").unwrap_or(&name).to_string()
}

/// Each module's dependencies on other modules of the crate (`crate::x` in its production code;
/// `crate::commands::y` counts as `commands::y`).
fn module_dependencies() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let files = sources();
    let modules: std::collections::BTreeSet<String> =
        files.iter().map(|(path, _)| module_of(path)).collect();
    let mut graph = std::collections::BTreeMap::new();
    for (path, text) in &files {
        let module = module_of(path);
        let code = production_code(text);
        let mut dependencies = std::collections::BTreeSet::new();
        for (index, _) in code.match_indices("crate::") {
            let rest = &code[index + "crate::".len()..];
            let words: Vec<&str> = rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or_default()
                .split("::")
                .collect();
            let nested = words.get(1).map(|word| format!("{}::{word}", words[0]));
            let target = match nested {
                Some(nested) if modules.contains(&nested) => nested,
                _ => words[0].to_string(),
            };
            if modules.contains(&target) && target != module {
                dependencies.insert(target);
            }
        }
        graph.insert(module, dependencies);
    }
    graph
}

#[test]
fn no_command_imports_another_and_no_module_imports_its_callers() {
    let graph = module_dependencies();
    for (path, text) in sources() {
        let module = module_of(&path);
        if !module.starts_with("commands::") {
            continue;
        }
        let code = production_code(&text);
        // A command split into a directory (`commands::deploy::cnpg`) may use its own parent;
        // a command file's `super` is the commands module itself.
        let own_part = module.matches("::").count() >= 2;
        assert!(
            own_part || !code.contains("super::"),
            "{module} reaches into the commands module (super::); use the release layer"
        );
        for dependency in &graph[&module] {
            assert!(
                !dependency.starts_with("commands"),
                "{module} imports {dependency}: commands never call each other; move the shared part below them"
            );
        }
    }
    // No cycle anywhere: walk the graph depth-first and look for a back edge.
    fn visit<'a>(
        module: &'a str,
        graph: &'a std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut std::collections::BTreeSet<&'a str>,
    ) {
        if done.contains(module) {
            return;
        }
        if let Some(start) = path.iter().position(|seen| *seen == module) {
            panic!("import cycle: {} -> {module}", path[start..].join(" -> "));
        }
        path.push(module);
        for next in &graph[module] {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(module);
    }
    let mut done = std::collections::BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn only_report_types_are_serialized() {
    // The JSON documents are a contract (tests/json.rs): only the commands' reports, the views of
    // domain values, the health report, the error document's code, the backup manifest (a file
    // format), the documents pgk8s hands to helm (chart values) and kubectl (manifests), and the
    // major-upgrade record it keeps on the Secret derive Serialize. Domain types never do.
    let allowed = [
        "src/output.rs",
        "src/views.rs",
        "src/health.rs",
        "src/error.rs",
        "src/backup.rs",
        "src/chart.rs",
        "src/manifests.rs",
        "src/major_upgrade.rs",
        "src/cnpg.rs",
    ];
    for (path, text) in sources() {
        let file = name(&path);
        if file.starts_with("src/commands/") || allowed.contains(&file.as_str()) {
            continue;
        }
        let code = production_code(&text);
        assert!(
            !code.lines().any(|line| {
                line.trim_start().starts_with("#[derive(")
                    && line
                        .split(|c: char| !c.is_alphanumeric())
                        .any(|word| word == "Serialize")
            }),
            "{file} derives Serialize: put the JSON shape in a report type or src/views.rs"
        );
    }
}
