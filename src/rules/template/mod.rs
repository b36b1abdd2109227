//! Go `text/template` interpreter for alert labels and annotations, with
//! Prometheus's data (`$labels`, `$value`, `$externalLabels`,
//! `$externalURL`) and function set (spec §3).
//!
//! Guarantees: for every template Go accepts in the supported subset the
//! output is byte-identical to Prometheus's (float `%v` printing, `map[...]`
//! form, `printf` verbs, humanize family, missing labels print `""`).
//! Deliberate differences: int/float comparisons are numeric (DIVERGE-3);
//! output is capped at 64 KiB and `range` at 10 000 iterations
//! (DIVERGE-4); `define`/`template`/`block` and Go methods on `toTime` /
//! `toDuration` results are not supported (parse error / execution error).
//!
//! ```
//! use watchpost::rules::template::{ExpandContext, Template, TemplateData};
//! let t = Template::parse("summary", "{{ $labels.job }} at {{ $value | humanizePercentage }}").unwrap();
//! let mut data = TemplateData::default();
//! data.labels.insert("job".into(), "api".into());
//! data.value = 0.0734;
//! assert_eq!(t.execute(&ExpandContext::new(data)).unwrap(), "api at 7.34%");
//! ```

mod exec;
mod funcs;
mod gofmt;
mod parse;
mod value;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use value::{QuerySample, TemplateData, Value};

/// The instant-query function templates call through `query`: expression
/// and evaluation time (ms) to samples, or an error message.
pub type TemplateQueryFn = Arc<dyn Fn(&str, i64) -> Result<Vec<QuerySample>, String> + Send + Sync>;

/// Variables bound before the user's text runs (Prometheus's header).
const PREDECLARED: &[&str] = &["$labels", "$externalLabels", "$externalURL", "$value"];

/// A template that did not parse. `line`/`column` are 1-based (column in
/// characters) within the template text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {name}:{line}: {message}")]
pub struct ParseError {
    /// Template name (e.g. `__alert_HighErrorRate`).
    pub name: String,
    /// Line of the problem (1-based).
    pub line: usize,
    /// Column of the problem (1-based).
    pub column: usize,
    /// What is wrong, in Go's wording where Go has one.
    pub message: String,
}

/// A template that failed while executing (bad argument, `first` of an
/// empty result, invalid regex, caps exceeded). The message is Go's
/// `template: NAME:LINE:COL: executing "NAME" at <NODE>: ...` form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExecError {
    /// The full message.
    pub message: String,
}

/// Everything an expansion may read: the data, the evaluation time (for
/// `query` and `now`) and the query function.
#[derive(Clone)]
pub struct ExpandContext {
    /// The dot.
    pub data: TemplateData,
    /// Evaluation timestamp (ms) used by `query` and `now`.
    pub ts_ms: i64,
    /// Backing function of `query`; `None` makes `query` an execution error.
    pub query: Option<TemplateQueryFn>,
}

impl ExpandContext {
    /// A context with `data`, time 0 and no query function.
    pub fn new(data: TemplateData) -> Self {
        ExpandContext {
            data,
            ts_ms: 0,
            query: None,
        }
    }
}

impl std::fmt::Debug for ExpandContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpandContext")
            .field("data", &self.data)
            .field("ts_ms", &self.ts_ms)
            .field("query", &self.query.is_some())
            .finish()
    }
}

/// A parsed template, cheap to execute many times.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    name: String,
    src: String,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parses `text`; `name` appears in error messages.
    pub fn parse(name: &str, text: &str) -> Result<Template, ParseError> {
        let nodes = parse::parse(text, PREDECLARED, &funcs::is_func).map_err(|mut e| {
            e.name = name.to_string();
            e
        })?;
        Ok(Template {
            name: name.to_string(),
            src: text.to_string(),
            nodes,
        })
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// True when the template contains no action (plain text); such values
    /// can be used without executing (and are literal in for-state restore).
    pub fn is_literal(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, parse::Node::Text(_)))
    }

    /// Runs the template.
    pub fn execute(&self, ctx: &ExpandContext) -> Result<String, ExecError> {
        exec::Exec::new(self, ctx).run()
    }

    /// Runs the template; an execution error becomes Prometheus's
    /// `<error expanding template: ...>` text (the alert still fires).
    /// The second value is the error, for counting and logging.
    pub fn expand(&self, ctx: &ExpandContext) -> (String, Option<ExecError>) {
        match self.execute(ctx) {
            Ok(s) => (s, None),
            Err(e) => (
                format!(
                    "<error expanding template: error executing template {}: {}>",
                    self.name, e.message
                ),
                Some(e),
            ),
        }
    }
}

/// Prometheus `humanize` (exposed for other modules that print values).
pub fn humanize(v: f64) -> String {
    funcs::humanize(v)
}

/// Go `%v` of a float64 (`1.2345678e+06`, `0.5`, `+Inf`).
pub fn format_go_float(v: f64) -> String {
    gofmt::format_float_v(v)
}

/// Go `url.QueryEscape` (used for generator URLs).
pub fn query_escape(s: &str) -> String {
    funcs::query_escape(s)
}
