//! What `deploy/` ships is checked like code: the Kubernetes manifests against the API's
//! schemas (kubernetes-validate from PyPI, strict: an unknown or misspelt field fails), and
//! every config they carry by the binary's own `check`.
#![cfg(feature = "server")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn manifests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    files
}

#[test]
fn the_kubernetes_manifests_match_the_api_schemas() {
    let Some(env) = common::python::python_env() else {
        return;
    };
    let out = Command::new(env.join("bin").join("kubernetes-validate"))
        .arg("--strict")
        .args(manifests())
        .output()
        .expect("kubernetes-validate runs");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
    assert!(!report.contains("ERROR"), "{report}");
}

/// The `proxy.toml: |` blocks of a manifest, unindented.
fn embedded_configs(manifest: &str) -> Vec<String> {
    let mut configs = Vec::new();
    let mut lines = manifest.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(indent) = line.strip_suffix("proxy.toml: |").map(str::len) else {
            continue;
        };
        let body_indent = " ".repeat(indent + 2);
        let mut config = String::new();
        while let Some(next) = lines.peek() {
            if !next.is_empty() && !next.starts_with(&body_indent) {
                break;
            }
            config.push_str(next.get(body_indent.len()..).unwrap_or(""));
            config.push('\n');
            lines.next();
        }
        configs.push(config);
    }
    configs
}

#[test]
fn every_config_the_manifests_carry_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for manifest in manifests() {
        for (i, config) in embedded_configs(&std::fs::read_to_string(&manifest).unwrap())
            .iter()
            .enumerate()
        {
            let path = dir.path().join(format!("{i}.toml"));
            std::fs::write(&path, config).unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_intercom-secure-proxy"))
                .args(["check", "--config"])
                .arg(&path)
                .env("INTERCOM_MESSENGER_SECRET", "a-messenger-secret")
                .env("APP_SESSION_SECRET", "an-app-session-secret")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}{}",
                manifest.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 2, "configmap.yaml and sidecar.yaml");
}
