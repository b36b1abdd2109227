//! `watchpost check rules` and `watchpost test rules`: promtool's output
//! and exit codes over the rule checker and the unit-test runner in
//! `crate::rules`. These functions return text and an exit code; printing
//! and exiting stay in `main.rs`.

use std::path::PathBuf;

use crate::rules::check::{CheckOptions, CheckOutput, check_rule_files, check_rule_text};
use crate::rules::unittest::{TestOptions, run_test_file};

/// `check rules FILE...`; no files means read one file from stdin.
/// Exit codes: 0 fine, 1 errors, 3 lint findings with `--lint-fatal`.
pub fn check_rules(files: &[PathBuf], opts: &CheckOptions) -> CheckOutput {
    if files.is_empty() {
        let mut text = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
            return CheckOutput {
                stdout: String::new(),
                stderr: format!("cannot read standard input: {e}\n"),
                exit_code: 1,
            };
        }
        return check_rule_text(&text, opts);
    }
    check_rule_files(files, opts)
}

/// `test rules TEST.yml...`: every file runs (one failing file does not
/// stop the others); exit 1 when any failed.
pub fn test_rules(files: &[PathBuf], opts: &TestOptions) -> CheckOutput {
    let mut out = CheckOutput::default();
    for f in files {
        let r = run_test_file(f, opts);
        out.stdout
            .push_str(&format!("Unit Testing:  {}\n", f.display()));
        for w in &r.warnings {
            out.stdout.push_str(&format!("  WARNING: {w}\n"));
        }
        if r.passed() {
            out.stdout.push_str(&r.report());
        } else {
            out.stderr.push_str(&format!("{}:\n", f.display()));
            out.stderr.push_str(&r.report());
            out.stdout.push_str("  FAILED\n");
            out.exit_code = 1;
        }
        out.stdout.push('\n');
    }
    out
}
