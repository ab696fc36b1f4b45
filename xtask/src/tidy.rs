//! Tidy checks over the tracked source files, run as tests: every module has a `//!` doc, no
//! stub macros or debug leftovers (see `banned` below) and no ignored tests in Rust code, and no absolute machine paths in
//! anything tracked.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    fn workspace_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace root")
            .to_path_buf()
    }

    /// Files git tracks (plus new ones not yet committed), relative to the root.
    fn tracked_files() -> Vec<PathBuf> {
        let root = workspace_root();
        let out = Command::new("git")
            .args(["ls-files", "--cached", "--others", "--exclude-standard"])
            .current_dir(&root)
            .output()
            .expect("git ls-files");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| root.join(l))
            .filter(|p| p.is_file())
            .collect()
    }

    fn rust_sources() -> Vec<PathBuf> {
        tracked_files()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .collect()
    }

    #[test]
    fn every_rust_module_starts_with_a_module_doc() {
        let missing: Vec<String> = rust_sources()
            .into_iter()
            .filter(|p| {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                let first = text
                    .lines()
                    .find(|l| !l.trim().is_empty() && !l.starts_with("#!["))
                    .unwrap_or("");
                !(first.starts_with("//!") || first.starts_with("// generated"))
            })
            .map(|p| p.display().to_string())
            .collect();
        assert!(
            missing.is_empty(),
            "modules without a //! doc: {missing:#?}"
        );
    }

    #[test]
    fn no_stubs_or_debugging_leftovers_in_rust_code() {
        let banned = [
            concat!("todo", "!("),
            concat!("dbg", "!("),
            concat!("unimplemented", "!("),
            concat!("#[", "ignore]"),
        ];
        let mut found = Vec::new();
        for p in rust_sources() {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                if banned.iter().any(|b| line.contains(b)) {
                    found.push(format!("{}:{}: {}", p.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(found.is_empty(), "stubs or leftovers: {found:#?}");
    }

    #[test]
    fn no_absolute_machine_paths_in_tracked_files() {
        let banned = [
            concat!("/", "work/"),
            concat!("/", "root/"),
            concat!("/", "home/"),
            concat!("/", "tmp/bash_jobs"),
        ];
        let mut found = Vec::new();
        for p in tracked_files() {
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            for (n, line) in text.lines().enumerate() {
                if banned.iter().any(|b| line.contains(b)) {
                    found.push(format!("{}:{}", p.display(), n + 1));
                }
            }
        }
        assert!(found.is_empty(), "absolute machine paths: {found:#?}");
    }
}
