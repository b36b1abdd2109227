//! `check rules`: validate rule files and lint them, with promtool's
//! output and exit codes (spec §1.3 "CLI contract"): `Checking <file>`,
//! then `  SUCCESS: <n> rules found` or `  FAILED:` and every problem;
//! exit 0 = fine, 1 = errors, 3 = lint problems with `lint_fatal`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::file::{LoadOptions, RuleFile, load_rule_file, parse_rule_file};

/// Which lints run (`--lint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LintMode {
    /// Every lint.
    #[default]
    All,
    /// Only duplicate rules.
    DuplicateRules,
    /// No lints.
    None,
}

/// `check rules` flags.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// `--lint`.
    pub lint: LintMode,
    /// `--lint-fatal`: lint findings make the exit code 3.
    pub lint_fatal: bool,
    /// `--ignore-unknown-fields`.
    pub ignore_unknown_fields: bool,
}

/// What the command prints and returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOutput {
    /// Text for stdout.
    pub stdout: String,
    /// Text for stderr.
    pub stderr: String,
    /// Process exit code (0, 1 or 3).
    pub exit_code: i32,
}

/// Duplicate rules in a file: same name and same merged labels.
/// Returns `(name, labels)` of each duplicated rule once per extra copy.
pub fn duplicate_rules(f: &RuleFile) -> Vec<(String, BTreeMap<String, String>)> {
    let mut seen: BTreeMap<(String, BTreeMap<String, String>), usize> = BTreeMap::new();
    let mut out = Vec::new();
    for g in &f.groups {
        for r in &g.rules {
            let key = (r.name().to_string(), r.labels.clone());
            let n = seen.entry(key.clone()).or_insert(0);
            *n += 1;
            if *n == 2 {
                out.push(key);
            }
        }
    }
    out
}

fn load_opts(opts: &CheckOptions) -> LoadOptions {
    LoadOptions {
        ignore_unknown_fields: opts.ignore_unknown_fields,
        ..LoadOptions::default()
    }
}

/// Checks files; `text` supplies the content for a path read elsewhere
/// (stdin), otherwise each path is read from disk.
fn check_one(
    name: &str,
    loaded: Result<RuleFile, super::RuleFileError>,
    opts: &CheckOptions,
    out: &mut CheckOutput,
) {
    let _ = writeln!(out.stdout, "Checking {name}");
    match loaded {
        Err(e) => {
            let _ = writeln!(out.stderr, "  FAILED:");
            let _ = writeln!(out.stderr, "{e}");
            out.exit_code = 1;
        }
        Ok(f) => {
            let n: usize = f.groups.iter().map(|g| g.rules.len()).sum();
            let mut lint_found = false;
            if opts.lint != LintMode::None {
                let dups = duplicate_rules(&f);
                if !dups.is_empty() {
                    lint_found = true;
                    let _ = writeln!(out.stdout, "{} duplicate rule(s) found.", dups.len());
                    for (name, labels) in &dups {
                        let _ = writeln!(out.stdout, "Metric: {name}\nLabel(s):");
                        for (k, v) in labels {
                            let _ = writeln!(out.stdout, "\t{k}: {v}");
                        }
                    }
                    let _ = writeln!(
                        out.stdout,
                        "Might cause inconsistency while recording expressions."
                    );
                }
            }
            if opts.lint == LintMode::All {
                for w in &f.warnings {
                    let _ = writeln!(out.stdout, "Warning: {w}");
                }
            }
            if lint_found && opts.lint_fatal {
                let _ = writeln!(out.stderr, "  FAILED: lint error");
                if out.exit_code == 0 {
                    out.exit_code = 3;
                }
            } else {
                let _ = writeln!(out.stdout, "  SUCCESS: {n} rules found");
            }
        }
    }
    out.stdout.push('\n');
}

/// `check rules FILE...`.
pub fn check_rule_files(paths: &[impl AsRef<Path>], opts: &CheckOptions) -> CheckOutput {
    let mut out = CheckOutput::default();
    let lo = load_opts(opts);
    for p in paths {
        let p = p.as_ref();
        check_one(
            &p.display().to_string(),
            load_rule_file(p, &lo),
            opts,
            &mut out,
        );
    }
    out
}

/// `check rules` on text read from stdin (no file arguments).
pub fn check_rule_text(text: &str, opts: &CheckOptions) -> CheckOutput {
    let mut out = CheckOutput::default();
    let lo = load_opts(opts);
    check_one(
        "standard input",
        parse_rule_file(Path::new("standard input"), text, &lo),
        opts,
        &mut out,
    );
    out
}
