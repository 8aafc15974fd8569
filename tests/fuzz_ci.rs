//! The short fuzz run (fuzz/ci.sh): every cargo-fuzz target replays its saved crash inputs
//! (fuzz/regressions/), then fuzzes from its seeds for FUZZ_SECONDS (10 unless set: with the
//! 4-minute build, about 5 minutes of the suite on 2 cores). A crash, a panic or a failed
//! oracle fails the test, with libFuzzer's report. Without the nightly toolchain the script
//! says "skipped: …" (and fails when CI is set).

use std::path::Path;
use std::process::Command;

#[test]
fn every_fuzz_target_passes_its_regressions_and_a_short_run() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/ci.sh");
    let mut run = Command::new("bash");
    run.arg(&script);
    if std::env::var_os("FUZZ_SECONDS").is_none() {
        run.env("FUZZ_SECONDS", "10");
    }
    let out = run.output().expect("bash runs fuzz/ci.sh");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // Shown with --nocapture, and in the failure message.
    println!("{report}");
    assert!(out.status.success(), "fuzz/ci.sh failed:\n{report}");
    if report.contains("skipped:") {
        return;
    }
    let targets =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets"))
            .expect("fuzz/fuzz_targets")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
            .count();
    let ran = report
        .lines()
        .filter(|l| l.starts_with("fuzz/ci.sh: ") && l.contains(": #"))
        .count();
    assert_eq!(ran, targets, "every target must have run:\n{report}");
}
