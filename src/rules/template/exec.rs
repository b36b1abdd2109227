//! Execution of a parsed template: Go `text/template` semantics for the
//! nodes of [`super::parse`], with the caps of spec §3.5 (64 KiB output per
//! expansion, 10 000 `range` iterations).

use std::sync::Arc;

use super::funcs;
use super::parse::{Command, Node, Operand, Pipeline, Term};
use super::value::Value;
use super::{ExecError, ExpandContext, Template};

/// Output cap per expansion (bytes); guards the evaluator against runaway
/// templates (DIVERGE-4, Go has no cap).
pub(crate) const MAX_OUTPUT: usize = 64 * 1024;
/// `range` iteration cap per expansion (DIVERGE-4).
pub(crate) const MAX_RANGE_ITERATIONS: usize = 10_000;

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct Exec<'a> {
    pub tmpl: &'a Template,
    pub ctx: &'a ExpandContext,
    vars: Vec<(String, Value)>,
    out: String,
    iterations: usize,
}

impl<'a> Exec<'a> {
    pub(crate) fn new(tmpl: &'a Template, ctx: &'a ExpandContext) -> Self {
        let root = Value::Data(Arc::new(ctx.data.clone()));
        let vars = vec![
            ("$".to_string(), root),
            ("$labels".to_string(), Value::string_map(&ctx.data.labels)),
            (
                "$externalLabels".to_string(),
                Value::string_map(&ctx.data.external_labels),
            ),
            (
                "$externalURL".to_string(),
                Value::str(ctx.data.external_url.as_str()),
            ),
            ("$value".to_string(), Value::Float(ctx.data.value)),
        ];
        Exec {
            tmpl,
            ctx,
            vars,
            out: String::new(),
            iterations: 0,
        }
    }

    pub(crate) fn run(mut self) -> Result<String, ExecError> {
        let dot = self.vars[0].1.clone();
        self.walk(&dot, &self.tmpl.nodes)?;
        Ok(self.out)
    }

    /// Go's error shape: `template: NAME:LINE:COL: executing "NAME" at <NODE>: MSG`.
    fn err(&self, pos: usize, node: &str, msg: impl std::fmt::Display) -> ExecError {
        let (line, col) = super::parse::line_col(&self.tmpl.src, pos);
        ExecError {
            message: format!(
                "template: {n}:{line}:{c}: executing \"{n}\" at <{node}>: {msg}",
                n = self.tmpl.name,
                c = col - 1
            ),
        }
    }

    fn write(&mut self, s: &str, pos: usize) -> Result<(), ExecError> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return Err(self.err(pos, "output", format!("output exceeds {MAX_OUTPUT} bytes")));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> Result<Flow, ExecError> {
        for n in nodes {
            match n {
                Node::Text(t) => self.write(t, 0)?,
                Node::Action(p) => {
                    let v = self.pipeline(dot, p)?;
                    if p.decl.is_empty() {
                        let s = match v {
                            Value::Nil => "<no value>".to_string(),
                            v => v.to_go_string(),
                        };
                        self.write(&s, p.pos)?;
                    }
                }
                Node::If { pipe, then, els } | Node::With { pipe, then, els } => {
                    let mark = self.vars.len();
                    let v = self.pipeline(dot, pipe)?;
                    let flow = if v.truthy() {
                        let d = if matches!(n, Node::With { .. }) {
                            v
                        } else {
                            dot.clone()
                        };
                        self.walk(&d, then)?
                    } else {
                        self.walk(dot, els)?
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range { pipe, body, els } => {
                    let mark = self.vars.len();
                    let v = self.eval_cmds(dot, pipe)?;
                    let items: Vec<(Value, Value)> = match &v {
                        Value::List(l) => l
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Value::Int(i as i64), x.clone()))
                            .collect(),
                        Value::Map(m, _) => m
                            .iter()
                            .map(|(k, x)| (Value::str(k.as_str()), x.clone()))
                            .collect(),
                        Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
                        Value::Nil => Vec::new(),
                        other => {
                            return Err(self.err(
                                pipe.pos,
                                "range",
                                format!("range can't iterate over {}", other.to_go_string()),
                            ));
                        }
                    };
                    if items.is_empty() {
                        self.walk(dot, els)?;
                    }
                    for (k, x) in items {
                        self.iterations += 1;
                        if self.iterations > MAX_RANGE_ITERATIONS {
                            return Err(self.err(
                                pipe.pos,
                                "range",
                                format!("more than {MAX_RANGE_ITERATIONS} range iterations"),
                            ));
                        }
                        let inner = self.vars.len();
                        match pipe.decl.len() {
                            0 => {}
                            1 => self.vars.push((pipe.decl[0].clone(), x.clone())),
                            _ => {
                                self.vars.push((pipe.decl[0].clone(), k));
                                self.vars.push((pipe.decl[1].clone(), x.clone()));
                            }
                        }
                        let flow = self.walk(&x, body)?;
                        self.vars.truncate(inner);
                        if matches!(flow, Flow::Break) {
                            break;
                        }
                    }
                    self.vars.truncate(mark);
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    /// Evaluates a pipeline and applies its declarations/assignments.
    fn pipeline(&mut self, dot: &Value, p: &Pipeline) -> Result<Value, ExecError> {
        let v = self.eval_cmds(dot, p)?;
        for name in &p.decl {
            if p.assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v.clone();
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn eval_cmds(&mut self, dot: &Value, p: &Pipeline) -> Result<Value, ExecError> {
        let mut last: Option<Value> = None;
        for c in &p.cmds {
            last = Some(self.command(dot, c, last)?);
        }
        Ok(last.unwrap_or(Value::Nil))
    }

    fn command(
        &mut self,
        dot: &Value,
        c: &Command,
        fin: Option<Value>,
    ) -> Result<Value, ExecError> {
        let first = &c.args[0];
        if let (Term::Func(name), true) = (&first.term, first.chain.is_empty()) {
            return self.call(dot, name, first.pos, &c.args[1..], fin);
        }
        if c.args.len() > 1 || fin.is_some() {
            return Err(self.err(
                first.pos,
                &first.describe(),
                format!("can't give argument to non-function {}", first.describe()),
            ));
        }
        self.operand(dot, first)
    }

    fn call(
        &mut self,
        dot: &Value,
        name: &str,
        pos: usize,
        args: &[Operand],
        fin: Option<Value>,
    ) -> Result<Value, ExecError> {
        // `and`/`or` short-circuit (Go >= 1.18): stop at the deciding operand.
        if name == "and" || name == "or" {
            let n = args.len() + usize::from(fin.is_some());
            if n < 1 {
                return Err(self.err(
                    pos,
                    name,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut v = Value::Nil;
            for a in args {
                v = self.operand(dot, a)?;
                if v.truthy() != (name == "and") {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.operand(dot, a)?);
        }
        if let Some(f) = fin {
            vals.push(f);
        }
        funcs::call(name, vals, self.ctx)
            .map_err(|e| self.err(pos, name, format!("error calling {name}: {e}")))
    }

    fn operand(&mut self, dot: &Value, o: &Operand) -> Result<Value, ExecError> {
        let mut v = match &o.term {
            Term::Dot => dot.clone(),
            Term::Field(f) => self.field(dot, f, o)?,
            Term::Var(name) => self
                .vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| self.err(o.pos, name, format!("undefined variable: {name}")))?,
            Term::Func(name) => self.call(dot, name, o.pos, &[], None)?,
            Term::Str(s) => Value::str(s.as_str()),
            Term::Int(i) => Value::Int(*i),
            Term::Float(f) => Value::Float(*f),
            Term::Bool(b) => Value::Bool(*b),
            Term::Nil => Value::Nil,
            Term::Pipe(p) => self.eval_cmds(dot, p)?,
        };
        for f in &o.chain {
            v = self.field(&v, f, o)?;
        }
        Ok(v)
    }

    fn field(&self, v: &Value, name: &str, o: &Operand) -> Result<Value, ExecError> {
        let got = match v {
            Value::Data(d) => match name {
                "Labels" => Some(Value::string_map(&d.labels)),
                "ExternalLabels" => Some(Value::string_map(&d.external_labels)),
                "ExternalURL" => Some(Value::str(d.external_url.as_str())),
                "Value" => Some(Value::Float(d.value)),
                _ => None,
            },
            Value::Sample(s) => match name {
                "Labels" => Some(Value::string_map(&s.labels)),
                "Value" => Some(Value::Float(s.value)),
                _ => None,
            },
            Value::Map(m, string_valued) => {
                Some(m.get(name).cloned().unwrap_or(if *string_valued {
                    Value::str("")
                } else {
                    Value::Nil
                }))
            }
            Value::Nil => {
                return Err(self.err(
                    o.pos,
                    &o.describe(),
                    format!("nil pointer evaluating interface {{}}.{name}"),
                ));
            }
            _ => None,
        };
        got.ok_or_else(|| {
            self.err(
                o.pos,
                &o.describe(),
                format!("can't evaluate field {name} in type {}", v.type_name()),
            )
        })
    }
}
