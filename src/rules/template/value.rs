//! Template values: the dynamic types a Go template sees in Prometheus
//! (float64 `$value`, `map[string]string` label maps, query samples, the
//! data struct) and their Go `%v` printing.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::gofmt::format_float_v;

/// One sample returned by the template `query` function (Go's
/// `sample{Labels map[string]string; Value float64}`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    /// Labels including `__name__` when the query kept it.
    pub labels: BTreeMap<String, String>,
    /// Sample value.
    pub value: f64,
}

/// The template's dot: Prometheus's `tmplData` struct.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateData {
    /// `.Labels` / `$labels`: the sample's labels.
    pub labels: BTreeMap<String, String>,
    /// `.ExternalLabels` / `$externalLabels`.
    pub external_labels: BTreeMap<String, String>,
    /// `.ExternalURL` / `$externalURL`.
    pub external_url: String,
    /// `.Value` / `$value`.
    pub value: f64,
}

/// A dynamically typed template value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Go `nil`.
    Nil,
    /// bool.
    Bool(bool),
    /// An integer (Go `int`, from integer literals and `len`).
    Int(i64),
    /// float64.
    Float(f64),
    /// string.
    Str(Arc<str>),
    /// A map; `true` when it is a `map[string]string` (a missing key reads
    /// as `""`), `false` for `map[string]interface{}` (missing key: nil).
    Map(Arc<BTreeMap<String, Value>>, bool),
    /// A slice (query results, `args`).
    List(Arc<Vec<Value>>),
    /// A query sample.
    Sample(Arc<QuerySample>),
    /// The data struct.
    Data(Arc<TemplateData>),
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<Arc<str>>) -> Value {
        Value::Str(s.into())
    }

    /// A `map[string]string` value.
    pub fn string_map(m: &BTreeMap<String, String>) -> Value {
        Value::Map(
            Arc::new(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::str(v.as_str())))
                    .collect(),
            ),
            true,
        )
    }

    /// Go truthiness: false, 0, "", nil and empty collections are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Map(m, _) => !m.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Sample(_) | Value::Data(_) => true,
        }
    }

    /// Go `fmt.Sprint(v)`.
    pub fn to_go_string(&self) -> String {
        match self {
            Value::Nil => "<nil>".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_float_v(*f),
            Value::Str(s) => s.to_string(),
            Value::Map(m, _) => {
                let parts: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.to_go_string()))
                    .collect();
                format!("map[{}]", parts.join(" "))
            }
            Value::List(l) => {
                let parts: Vec<String> = l.iter().map(Value::to_go_string).collect();
                format!("[{}]", parts.join(" "))
            }
            Value::Sample(s) => format!(
                "{{{} {}}}",
                Value::string_map(&s.labels).to_go_string(),
                format_float_v(s.value)
            ),
            Value::Data(d) => format!(
                "{{{} {} {} {}}}",
                Value::string_map(&d.labels).to_go_string(),
                Value::string_map(&d.external_labels).to_go_string(),
                d.external_url,
                format_float_v(d.value)
            ),
        }
    }

    /// Go type name used in error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Map(_, true) => "map[string]string",
            Value::Map(_, false) => "map[string]interface {}",
            Value::List(_) => "[]interface {}",
            Value::Sample(_) => "*template.sample",
            Value::Data(_) => "template.tmplData",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_printing() {
        let m: BTreeMap<String, String> = [
            ("job".to_string(), "node".to_string()),
            ("instance".into(), "a:1".into()),
        ]
        .into();
        assert_eq!(
            Value::string_map(&m).to_go_string(),
            "map[instance:a:1 job:node]"
        );
        assert_eq!(Value::string_map(&BTreeMap::new()).to_go_string(), "map[]");
        let s = QuerySample {
            labels: m,
            value: 1.5,
        };
        assert_eq!(
            Value::Sample(Arc::new(s)).to_go_string(),
            "{map[instance:a:1 job:node] 1.5}"
        );
        assert_eq!(
            Value::List(Arc::new(vec![Value::Int(1), Value::str("a")])).to_go_string(),
            "[1 a]"
        );
    }
}
