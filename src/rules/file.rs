//! Rule files in Prometheus format (spec §1): strict decoding with a
//! `line:column` for every problem, validation, and loading from globs.
//!
//! YAML is read with `saphyr`'s `MarkedYaml` because every node carries its
//! span there; serde-based YAML crates only locate syntax errors, and the
//! spec wants `line:col` on semantic errors too (bad rule name, PromQL
//! error, template error, duplicate group).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use super::duration::parse_duration_ms;
use super::template::Template;

/// A position in a rule file: 1-based line and column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// Line (1-based).
    pub line: usize,
    /// Column (1-based, in characters).
    pub column: usize,
}

impl Pos {
    fn of(n: &MarkedYaml) -> Pos {
        Pos {
            line: n.span.start.line(),
            column: n.span.start.col() + 1,
        }
    }
}

/// One problem found in a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// Where.
    pub pos: Pos,
    /// The group, when the problem is inside one.
    pub group: Option<String>,
    /// 1-based rule index and rule name, when the problem is inside a rule.
    pub rule: Option<(usize, String)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.pos.line, self.pos.column)?;
        match (&self.group, &self.rule) {
            (Some(g), Some((i, n))) => write!(f, "group {g:?}, rule {i}, {n:?}: ")?,
            (Some(g), None) => write!(f, "group {g:?}: ")?,
            _ => {}
        }
        f.write_str(&self.message)
    }
}

/// Every problem of one file (a file is accepted only when this is empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RuleFileError {
    /// The file.
    pub path: PathBuf,
    /// All problems, in file order.
    pub errors: Vec<RuleError>,
}

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{e}", self.path.display())?;
        }
        Ok(())
    }
}

/// What kind of rule, with the kind-specific fields.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// `record: <metric name>`.
    Recording {
        /// Output metric name.
        record: String,
    },
    /// `alert: <name>`.
    Alerting {
        /// Alert name.
        alert: String,
        /// `for` (ms, 0 = off).
        for_ms: i64,
        /// `keep_firing_for` (ms, 0 = off).
        keep_firing_for_ms: i64,
        /// Annotation templates in file order.
        annotations: Vec<(String, Template)>,
    },
}

/// One validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Kind and kind-specific fields.
    pub kind: RuleKind,
    /// The PromQL expression as written.
    pub expr: String,
    /// Merged labels (group labels, then the rule's own, which win). For
    /// alerting rules the values are templates (see `label_templates`).
    pub labels: BTreeMap<String, String>,
    /// Parsed templates of `labels` (alerting rules only; empty otherwise).
    pub label_templates: Vec<(String, Template)>,
    /// Position of the rule in its file.
    pub pos: Pos,
}

impl RuleSpec {
    /// `record` or `alert` name.
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Recording { record } => record,
            RuleKind::Alerting { alert, .. } => alert,
        }
    }
}

/// One validated group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    /// Group name (unique within the file).
    pub name: String,
    /// The file it came from (part of the group's identity).
    pub file: PathBuf,
    /// `interval` (ms); `None` = the global evaluation interval.
    pub interval_ms: Option<i64>,
    /// `limit` (0 = unlimited).
    pub limit: usize,
    /// `query_offset` (ms); `None` = the global rule query offset.
    pub query_offset_ms: Option<i64>,
    /// Group labels as written.
    pub labels: BTreeMap<String, String>,
    /// Rules in file order.
    pub rules: Vec<RuleSpec>,
    /// Position of the group.
    pub pos: Pos,
}

/// A validated file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFile {
    /// Path as given.
    pub path: PathBuf,
    /// Groups in file order.
    pub groups: Vec<GroupSpec>,
    /// Non-fatal findings (lints), already formatted with `line:col`.
    pub warnings: Vec<String>,
}

/// Checks a PromQL expression; `Err` carries the parser's message.
pub type ExprValidator = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Loader options.
#[derive(Clone)]
pub struct LoadOptions {
    /// Accept unknown keys (`check rules --ignore-unknown-fields`).
    pub ignore_unknown_fields: bool,
    /// PromQL check for `expr`; `None` skips it. The default parses with
    /// [`crate::promql::parse`].
    pub validate_expr: Option<ExprValidator>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            ignore_unknown_fields: false,
            validate_expr: Some(Arc::new(|e: &str| {
                crate::promql::parse(e)
                    .map(|_| ())
                    .map_err(|err| err.to_string())
            })),
        }
    }
}

impl fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadOptions")
            .field("ignore_unknown_fields", &self.ignore_unknown_fields)
            .field("validate_expr", &self.validate_expr.is_some())
            .finish()
    }
}

/// True for a legacy label name `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// True for a legacy metric name `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

struct Ctx<'o> {
    opts: &'o LoadOptions,
    errors: Vec<RuleError>,
    warnings: Vec<String>,
    group: Option<String>,
    rule: Option<(usize, String)>,
}

impl Ctx<'_> {
    fn err(&mut self, pos: Pos, msg: impl Into<String>) {
        self.errors.push(RuleError {
            pos,
            group: self.group.clone(),
            rule: self.rule.clone(),
            message: msg.into(),
        });
    }

    /// The entries of a mapping node, reporting unknown keys.
    fn mapping<'a>(
        &mut self,
        n: &'a MarkedYaml<'a>,
        what: &str,
        go_type: &str,
        allowed: &[&str],
    ) -> Option<Vec<(String, &'a MarkedYaml<'a>)>> {
        let YamlData::Mapping(m) = &n.data else {
            if !is_null(n) {
                self.err(
                    Pos::of(n),
                    format!("{what} must be a mapping, got {}", kind_name(n)),
                );
            }
            return None;
        };
        let mut out = Vec::new();
        for (k, v) in m {
            let Some(key) = scalar_string(k) else {
                self.err(Pos::of(k), format!("{what} keys must be strings"));
                continue;
            };
            if !allowed.is_empty() && !allowed.contains(&key.as_str()) {
                if !self.opts.ignore_unknown_fields {
                    self.err(
                        Pos::of(k),
                        format!("field {key} not found in type {go_type}"),
                    );
                }
                continue;
            }
            out.push((key, v));
        }
        Some(out)
    }

    fn string(&mut self, n: &MarkedYaml, field: &str) -> Option<String> {
        match scalar_string(n) {
            Some(s) => Some(s),
            None => {
                self.err(
                    Pos::of(n),
                    format!("field '{field}' must be a string, got {}", kind_name(n)),
                );
                None
            }
        }
    }

    fn duration(&mut self, n: &MarkedYaml, field: &str) -> Option<i64> {
        let s = self.string(n, field)?;
        match parse_duration_ms(&s) {
            Ok(ms) => Some(ms),
            Err(e) => {
                self.err(Pos::of(n), format!("field '{field}': {e}"));
                None
            }
        }
    }

    fn string_map(&mut self, n: &MarkedYaml, field: &str) -> Vec<(String, String, Pos)> {
        let Some(entries) = self.mapping(n, field, "map[string]string", &[]) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            if let Some(s) = self.string(v, field) {
                out.push((k, s, Pos::of(v)));
            }
        }
        out
    }
}

fn is_null(n: &MarkedYaml) -> bool {
    matches!(n.data, YamlData::Value(Scalar::Null))
}

fn kind_name(n: &MarkedYaml) -> &'static str {
    match &n.data {
        YamlData::Mapping(_) => "a mapping",
        YamlData::Sequence(_) => "a sequence",
        YamlData::Value(Scalar::Null) => "null",
        YamlData::Value(_) | YamlData::Representation(..) => "a scalar",
        _ => "an unsupported node",
    }
}

/// Any scalar as its string form (YAML `1` into a Go string field is "1").
fn scalar_string(n: &MarkedYaml) -> Option<String> {
    match &n.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Some(i.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        YamlData::Value(Scalar::FloatingPoint(f)) => Some(f.to_string()),
        YamlData::Representation(s, _, _) => Some(s.to_string()),
        _ => None,
    }
}

/// Parses and validates one rule file's text. `path` is used in messages
/// and as part of group identity.
pub fn parse_rule_file(
    path: &Path,
    text: &str,
    opts: &LoadOptions,
) -> Result<RuleFile, RuleFileError> {
    let fail = |errors| RuleFileError {
        path: path.to_path_buf(),
        errors,
    };
    let docs = match MarkedYaml::load_from_str(text) {
        Ok(d) => d,
        Err(e) => {
            return Err(fail(vec![RuleError {
                pos: Pos {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                },
                group: None,
                rule: None,
                message: format!("yaml: {}", e.info()),
            }]));
        }
    };
    let mut ctx = Ctx {
        opts,
        errors: Vec::new(),
        warnings: Vec::new(),
        group: None,
        rule: None,
    };
    if docs.len() > 1 {
        ctx.warnings.push(format!(
            "{}: only the first YAML document is used",
            path.display()
        ));
    }
    let mut groups = Vec::new();
    if let Some(root) = docs.first()
        && let Some(top) = ctx.mapping(root, "rule file", "rulefmt.RuleGroups", &["groups"])
    {
        for (_, gs) in top {
            match &gs.data {
                YamlData::Sequence(items) => {
                    for g in items {
                        if let Some(spec) = parse_group(&mut ctx, path, g) {
                            groups.push(spec);
                        }
                    }
                }
                _ if is_null(gs) => {}
                _ => ctx.err(
                    Pos::of(gs),
                    format!("'groups' must be a sequence, got {}", kind_name(gs)),
                ),
            }
        }
    }
    let mut seen: BTreeMap<String, Pos> = BTreeMap::new();
    for g in &groups {
        if seen.insert(g.name.clone(), g.pos).is_some() {
            ctx.group = None;
            ctx.rule = None;
            ctx.err(
                g.pos,
                format!("groupname: {:?} is repeated in the same file", g.name),
            );
        }
    }
    if !ctx.errors.is_empty() {
        ctx.errors.sort_by_key(|e| e.pos);
        return Err(fail(ctx.errors));
    }
    Ok(RuleFile {
        path: path.to_path_buf(),
        groups,
        warnings: ctx.warnings,
    })
}

fn parse_group(ctx: &mut Ctx, path: &Path, g: &MarkedYaml) -> Option<GroupSpec> {
    ctx.group = None;
    ctx.rule = None;
    let pos = Pos::of(g);
    let entries = ctx.mapping(
        g,
        "group",
        "rulefmt.RuleGroup",
        &[
            "name",
            "interval",
            "limit",
            "query_offset",
            "labels",
            "rules",
        ],
    )?;
    let get = |k: &str| entries.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    let name = get("name")
        .and_then(|n| ctx.string(n, "name"))
        .unwrap_or_default();
    if name.is_empty() {
        ctx.err(pos, "Groupname must not be empty");
    }
    ctx.group = Some(name.clone());
    let interval_ms = get("interval").and_then(|n| ctx.duration(n, "interval"));
    if interval_ms == Some(0) {
        ctx.err(
            get("interval").map(Pos::of).unwrap_or(pos),
            "field 'interval' must be greater than 0",
        );
    }
    let query_offset_ms = get("query_offset").and_then(|n| ctx.duration(n, "query_offset"));
    let limit = match get("limit") {
        None => 0,
        Some(n) => match &n.data {
            YamlData::Value(Scalar::Integer(i)) if *i >= 0 => *i as usize,
            _ => {
                ctx.err(Pos::of(n), "field 'limit' must be a non-negative integer");
                0
            }
        },
    };
    let mut labels = BTreeMap::new();
    if let Some(l) = get("labels") {
        for (k, v, p) in ctx.string_map(l, "labels") {
            if !is_valid_label_name(&k) || k == "__name__" {
                ctx.err(p, format!("invalid label name: {k}"));
            }
            labels.insert(k, v);
        }
    }
    let mut rules = Vec::new();
    if let Some(rs) = get("rules") {
        match &rs.data {
            YamlData::Sequence(items) => {
                for (i, r) in items.iter().enumerate() {
                    if let Some(spec) = parse_rule(ctx, i + 1, r, &labels, interval_ms) {
                        rules.push(spec);
                    }
                }
            }
            _ if is_null(rs) => {}
            _ => ctx.err(
                Pos::of(rs),
                format!("'rules' must be a sequence, got {}", kind_name(rs)),
            ),
        }
    }
    ctx.rule = None;
    Some(GroupSpec {
        name,
        file: path.to_path_buf(),
        interval_ms,
        limit,
        query_offset_ms,
        labels,
        rules,
        pos,
    })
}

fn parse_rule(
    ctx: &mut Ctx,
    index: usize,
    r: &MarkedYaml,
    group_labels: &BTreeMap<String, String>,
    group_interval: Option<i64>,
) -> Option<RuleSpec> {
    let pos = Pos::of(r);
    // Name the rule in messages about its own keys too.
    let early_name = match &r.data {
        YamlData::Mapping(m) => m
            .iter()
            .find(|(k, _)| matches!(scalar_string(k).as_deref(), Some("record" | "alert")))
            .and_then(|(_, v)| scalar_string(v))
            .unwrap_or_default(),
        _ => String::new(),
    };
    ctx.rule = Some((index, early_name));
    let entries = ctx.mapping(
        r,
        "rule",
        "rulefmt.RuleNode",
        &[
            "record",
            "alert",
            "expr",
            "for",
            "keep_firing_for",
            "labels",
            "annotations",
        ],
    )?;
    let get = |k: &str| entries.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    let record = get("record").and_then(|n| ctx.string(n, "record"));
    let alert = get("alert").and_then(|n| ctx.string(n, "alert"));
    let name = record.clone().or_else(|| alert.clone()).unwrap_or_default();
    ctx.rule = Some((index, name.clone()));
    let mut ok = true;
    match (&record, &alert) {
        (Some(_), Some(_)) => {
            ctx.err(pos, "only one of 'record' and 'alert' must be set");
            ok = false;
        }
        (None, None) => {
            ctx.err(pos, "one of 'record' or 'alert' must be set");
            ok = false;
        }
        _ => {}
    }
    if alert.as_deref() == Some("") {
        ctx.err(
            get("alert").map(Pos::of).unwrap_or(pos),
            "field 'alert' must be set in rule",
        );
        ok = false;
    }
    let expr_node = get("expr");
    let expr = expr_node
        .and_then(|n| ctx.string(n, "expr"))
        .unwrap_or_default();
    if expr.trim().is_empty() {
        ctx.err(pos, "field 'expr' must be set in rule");
        ok = false;
    } else if let Some(v) = &ctx.opts.validate_expr
        && let Err(e) = v(&expr)
    {
        ctx.err(
            expr_node.map(Pos::of).unwrap_or(pos),
            format!("could not parse expression: {e}"),
        );
        ok = false;
    }
    let for_ms = get("for").and_then(|n| ctx.duration(n, "for")).unwrap_or(0);
    let keep_ms = get("keep_firing_for")
        .and_then(|n| ctx.duration(n, "keep_firing_for"))
        .unwrap_or(0);
    let mut own_labels = Vec::new();
    if let Some(l) = get("labels") {
        for (k, v, p) in ctx.string_map(l, "labels") {
            if !is_valid_label_name(&k) || k == "__name__" {
                ctx.err(p, format!("invalid label name: {k}"));
                ok = false;
            }
            own_labels.push((k, v, p));
        }
    }
    let mut labels = group_labels.clone();
    for (k, v, _) in &own_labels {
        labels.insert(k.clone(), v.clone());
    }
    let annotations_raw =
        get("annotations").map(|n| (Pos::of(n), ctx.string_map(n, "annotations")));
    let kind = if let Some(rec) = record.filter(|_| alert.is_none()) {
        for f in ["for", "keep_firing_for", "annotations"] {
            if let Some(n) = get(f) {
                ctx.err(Pos::of(n), format!("invalid field '{f}' in recording rule"));
                ok = false;
            }
        }
        if rec.contains('{') || rec.contains('}') {
            ctx.err(
                pos,
                format!("braces present in the recording rule name; should it be in expr?: {rec}"),
            );
            ok = false;
        } else if !is_valid_metric_name(&rec) {
            ctx.err(pos, format!("invalid recording rule name: {rec}"));
            ok = false;
        }
        RuleKind::Recording { record: rec }
    } else {
        let alert = alert.unwrap_or_default();
        let tname = format!("__alert_{alert}");
        let mut annotations = Vec::new();
        for (k, v, p) in annotations_raw.map(|(_, a)| a).unwrap_or_default() {
            if !is_valid_label_name(&k) {
                ctx.err(p, format!("invalid annotation name: {k}"));
                ok = false;
                continue;
            }
            match Template::parse(&tname, &v) {
                Ok(t) => annotations.push((k, t)),
                Err(e) => {
                    ctx.err(p, format!("annotation {k:?}: {e}"));
                    ok = false;
                }
            }
        }
        if let Some(gi) = group_interval
            && for_ms > 0
            && for_ms < gi
        {
            ctx.warnings.push(format!(
                    "{}:{}: alert {alert:?}: 'for' ({for_ms} ms) is shorter than the group interval ({gi} ms)",
                    pos.line, pos.column
                ));
        }
        RuleKind::Alerting {
            alert,
            for_ms,
            keep_firing_for_ms: keep_ms,
            annotations,
        }
    };
    let mut label_templates = Vec::new();
    if let RuleKind::Alerting { alert, .. } = &kind {
        let tname = format!("__alert_{alert}");
        for (k, v) in &labels {
            let p = own_labels
                .iter()
                .find(|(n, _, _)| n == k)
                .map(|x| x.2)
                .unwrap_or(pos);
            match Template::parse(&tname, v) {
                Ok(t) => {
                    if v.contains("$value") || v.contains(".Value") {
                        ctx.warnings.push(format!(
                            "{}:{}: alert {alert:?}: label {k:?} uses the value, so every evaluation creates a new alert",
                            p.line, p.column
                        ));
                    }
                    label_templates.push((k.clone(), t));
                }
                Err(e) => {
                    ctx.err(p, format!("label {k:?}: {e}"));
                    ok = false;
                }
            }
        }
    }
    if !ok {
        return None;
    }
    Some(RuleSpec {
        kind,
        expr,
        labels,
        label_templates,
        pos,
    })
}

/// Reads and validates one file.
pub fn load_rule_file(path: &Path, opts: &LoadOptions) -> Result<RuleFile, RuleFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| RuleFileError {
        path: path.to_path_buf(),
        errors: vec![RuleError {
            pos: Pos { line: 0, column: 0 },
            group: None,
            rule: None,
            message: format!("cannot read file: {e}"),
        }],
    })?;
    parse_rule_file(path, &text, opts)
}

/// Expands glob patterns (`*`, `?`, `[...]` in any path component) into
/// sorted, de-duplicated file paths. A pattern without wildcards names
/// its file directly (it need not exist: loading reports that).
pub fn expand_globs(patterns: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in patterns {
        if !p.contains(['*', '?', '[']) {
            out.push(PathBuf::from(p));
            continue;
        }
        let path = Path::new(p);
        let mut current = vec![PathBuf::new()];
        for comp in path.components() {
            let s = comp.as_os_str().to_string_lossy().to_string();
            let mut next = Vec::new();
            for base in &current {
                if !s.contains(['*', '?', '[']) {
                    next.push(base.join(&s));
                    continue;
                }
                let dir = if base.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    base.as_path()
                };
                if let Ok(rd) = std::fs::read_dir(dir) {
                    for e in rd.flatten() {
                        let name = e.file_name().to_string_lossy().to_string();
                        if (!name.starts_with('.') || s.starts_with('.')) && glob_match(&s, &name) {
                            next.push(base.join(name));
                        }
                    }
                }
            }
            current = next;
        }
        out.extend(current.into_iter().filter(|p| p.is_file()));
    }
    out.sort();
    out.dedup();
    out
}

/// Shell-style match of one path component.
fn glob_match(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|c| *c == ']') else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let Some(c) = n.first() else { return false };
                let (neg, set) = match p.get(1) {
                    Some('!' | '^') => (true, &p[2..end]),
                    _ => (false, &p[1..end]),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= *c && *c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == *c;
                        i += 1;
                    }
                }
                hit != neg && go(&p[end + 1..], &n[1..])
            }
            Some(ch) => n.first() == Some(ch) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

/// Loads every file matched by `patterns`, all-or-nothing: any invalid
/// file makes the whole load fail with every file's problems.
pub fn load_globs(
    patterns: &[String],
    opts: &LoadOptions,
) -> Result<Vec<RuleFile>, Vec<RuleFileError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in expand_globs(patterns) {
        match load_rule_file(&p, opts) {
            Ok(f) => files.push(f),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
