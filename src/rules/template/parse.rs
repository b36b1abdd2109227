//! Lexer and parser for the Go `text/template` subset (see the module doc
//! of [`super`]). Produces a tree of [`Node`]s; every node keeps its byte
//! offset so execution errors can name `line:col` like Go does.

use super::ParseError;

/// A parsed template body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text(String),
    Action(Pipeline),
    If {
        pipe: Pipeline,
        then: Vec<Node>,
        els: Vec<Node>,
    },
    With {
        pipe: Pipeline,
        then: Vec<Node>,
        els: Vec<Node>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        els: Vec<Node>,
    },
    Break,
    Continue,
}

/// `$a, $b := cmd | cmd`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipeline {
    pub pos: usize,
    pub decl: Vec<String>,
    /// `=` instead of `:=`.
    pub assign: bool,
    pub cmds: Vec<Command>,
}

/// One command of a pipeline: operands separated by spaces.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Command {
    pub pos: usize,
    pub args: Vec<Operand>,
}

/// A term with an optional field chain (`$x.a.b`, `(pipe).a`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Operand {
    pub pos: usize,
    pub term: Term,
    pub chain: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Term {
    Dot,
    /// `.A` (the first field; the rest are in the chain).
    Field(String),
    Var(String),
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Pipe(Box<Pipeline>),
}

impl Operand {
    /// The node text Go prints in `at <...>` of execution errors.
    pub(crate) fn describe(&self) -> String {
        let base = match &self.term {
            Term::Dot => ".".to_string(),
            Term::Field(f) => format!(".{f}"),
            Term::Var(v) => v.clone(),
            Term::Func(f) => f.clone(),
            Term::Str(s) => super::gofmt::go_quote(s),
            Term::Int(i) => i.to_string(),
            Term::Float(f) => f.to_string(),
            Term::Bool(b) => b.to_string(),
            Term::Nil => "nil".to_string(),
            Term::Pipe(_) => "(...)".to_string(),
        };
        let mut s = base;
        for c in &self.chain {
            s.push('.');
            s.push_str(c);
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Field(String),
    Dot,
    Var(String),
    Str(String),
    Int(i64),
    Float(f64),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    /// Whitespace precedes this token (separates operands).
    space_before: bool,
}

/// Line (1-based) and column (1-based, in characters) of byte `pos`.
pub(crate) fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let before = &src[..pos];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// Tokens of the current action.
    toks: Vec<Token>,
    ti: usize,
    /// Variable scopes (innermost last).
    vars: Vec<Vec<String>>,
    /// Pending whitespace trim for the next text node (after `-}}`).
    trim_next: bool,
    range_depth: usize,
    is_func: &'a dyn Fn(&str) -> bool,
}

/// Parses `src` with the predefined variables `predeclared` (e.g. `$labels`).
pub(crate) fn parse(
    src: &str,
    predeclared: &[&str],
    is_func: &dyn Fn(&str) -> bool,
) -> Result<Vec<Node>, ParseError> {
    let mut p = Parser {
        src,
        pos: 0,
        toks: Vec::new(),
        ti: 0,
        vars: vec![
            std::iter::once("$".to_string())
                .chain(predeclared.iter().map(|s| s.to_string()))
                .collect(),
        ],
        trim_next: false,
        range_depth: 0,
        is_func,
    };
    let (nodes, stop) = p.list()?;
    match stop {
        Stop::Eof => Ok(nodes),
        Stop::End(pos) => Err(p.err(pos, "unexpected {{end}}")),
        Stop::Else(pos, _) => Err(p.err(pos, "unexpected {{else}}")),
    }
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End(usize),
    /// `{{else}}` (with the tokens after `else`, e.g. `if cond`, already lexed).
    Else(usize, bool),
}

impl<'a> Parser<'a> {
    fn err(&self, pos: usize, msg: impl Into<String>) -> ParseError {
        let (line, column) = line_col(self.src, pos);
        ParseError {
            name: String::new(),
            line,
            column,
            message: msg.into(),
        }
    }

    /// Parses nodes until EOF, `{{end}}` or `{{else}}`.
    fn list(&mut self) -> Result<(Vec<Node>, Stop), ParseError> {
        let mut nodes = Vec::new();
        loop {
            let rest = &self.src[self.pos..];
            let text_end = rest
                .find("{{")
                .map(|i| self.pos + i)
                .unwrap_or(self.src.len());
            let mut text = &self.src[self.pos..text_end];
            if self.trim_next {
                text = text.trim_start_matches([' ', '\t', '\r', '\n']);
                self.trim_next = false;
            }
            let at_delim = text_end < self.src.len();
            let trim_left = at_delim
                && self.src[text_end + 2..].starts_with('-')
                && self.src[text_end + 3..].starts_with([' ', '\t', '\r', '\n']);
            if trim_left {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text.to_string()));
            }
            if !at_delim {
                self.pos = self.src.len();
                return Ok((nodes, Stop::Eof));
            }
            let action_start = text_end;
            self.pos = text_end + 2 + if trim_left { 2 } else { 0 };
            if self.lex_comment(action_start)? {
                continue;
            }
            self.lex_action(action_start)?;
            let first = self.toks.first().cloned();
            match first.map(|t| t.tok) {
                Some(Tok::Ident(k)) if is_keyword(&k) => {
                    self.ti = 1;
                    match k.as_str() {
                        "end" => {
                            self.expect_end("end")?;
                            return Ok((nodes, Stop::End(action_start)));
                        }
                        "else" => {
                            let chained =
                                self.ti < self.toks.len() && self.toks[self.ti].tok != Tok::End;
                            if !chained {
                                self.expect_end("else")?;
                            }
                            return Ok((nodes, Stop::Else(action_start, chained)));
                        }
                        "if" | "with" | "range" => {
                            let node = self.control(&k, action_start)?;
                            nodes.push(node);
                        }
                        "break" | "continue" => {
                            if self.range_depth == 0 {
                                return Err(self.err(
                                    action_start,
                                    format!("{{{{{k}}}}} outside {{{{range}}}}"),
                                ));
                            }
                            self.expect_end(&k)?;
                            nodes.push(if k == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        other => {
                            return Err(self.err(
                                action_start,
                                format!("{{{{{other}}}}} is not supported in watchpost templates"),
                            ));
                        }
                    }
                }
                _ => {
                    self.ti = 0;
                    let pipe = self.pipeline(true, action_start)?;
                    self.expect_end("command")?;
                    nodes.push(Node::Action(pipe));
                }
            }
        }
    }

    /// `if`/`with`/`range` after the keyword; parses through the matching `end`.
    fn control(&mut self, kind: &str, pos: usize) -> Result<Node, ParseError> {
        self.vars.push(Vec::new());
        let pipe = self.pipeline(true, pos)?;
        self.expect_end(kind)?;
        if kind == "range" {
            self.range_depth += 1;
        }
        let res = self.list();
        if kind == "range" {
            self.range_depth -= 1;
        }
        let (then, stop) = res?;
        let els = match stop {
            Stop::Eof => {
                return Err(self.err(pos, format!("unexpected EOF: unclosed {{{{{kind}}}}}")));
            }
            Stop::End(_) => Vec::new(),
            Stop::Else(epos, chained) => {
                if chained {
                    // `{{else if ...}}` / `{{else with ...}}`: the rest of the
                    // chain shares our `{{end}}`.
                    let k = match &self.toks.get(self.ti).map(|t| &t.tok) {
                        Some(Tok::Ident(k)) if k == "if" || k == "with" => k.clone(),
                        _ => return Err(self.err(epos, "expected if or with after else")),
                    };
                    self.ti += 1;
                    vec![self.control(&k, epos)?]
                } else {
                    let (els, stop2) = self.list()?;
                    match stop2 {
                        Stop::End(_) => els,
                        Stop::Eof => {
                            return Err(
                                self.err(pos, format!("unexpected EOF: unclosed {{{{{kind}}}}}"))
                            );
                        }
                        Stop::Else(p2, _) => {
                            return Err(self.err(p2, "expected end; found {{else}}"));
                        }
                    }
                }
            }
        };
        self.vars.pop();
        Ok(match kind {
            "if" => Node::If { pipe, then, els },
            "with" => Node::With { pipe, then, els },
            _ => Node::Range {
                pipe,
                body: then,
                els,
            },
        })
    }

    fn expect_end(&mut self, ctx: &str) -> Result<(), ParseError> {
        match self.toks.get(self.ti) {
            Some(Token { tok: Tok::End, .. }) => Ok(()),
            Some(t) => Err(self.err(
                t.pos,
                format!("unexpected {} in {ctx}", describe_tok(&t.tok)),
            )),
            None => Err(self.err(self.pos, "unclosed action")),
        }
    }

    fn declared(&self, v: &str) -> bool {
        self.vars.iter().any(|s| s.iter().any(|x| x == v))
    }

    fn pipeline(&mut self, allow_decl: bool, pos: usize) -> Result<Pipeline, ParseError> {
        let mut decl = Vec::new();
        let mut assign = false;
        // Look ahead for `$x :=`, `$x =`, `$x, $y :=`.
        if allow_decl {
            let save = self.ti;
            let mut names = Vec::new();
            while let Some(Tok::Var(v)) = self.toks.get(self.ti).map(|t| t.tok.clone()) {
                names.push(v);
                self.ti += 1;
                match self.toks.get(self.ti).map(|t| t.tok.clone()) {
                    Some(Tok::Comma) if names.len() == 1 => {
                        self.ti += 1;
                        continue;
                    }
                    Some(Tok::Declare) => {
                        self.ti += 1;
                        decl = names.clone();
                        break;
                    }
                    Some(Tok::Assign) => {
                        self.ti += 1;
                        decl = names.clone();
                        assign = true;
                        break;
                    }
                    _ => break,
                }
            }
            if decl.is_empty() {
                self.ti = save;
            }
        }
        let mut cmds = Vec::new();
        loop {
            let cpos = self.toks.get(self.ti).map(|t| t.pos).unwrap_or(pos);
            let mut args = Vec::new();
            loop {
                match self.toks.get(self.ti).map(|t| t.tok.clone()) {
                    None | Some(Tok::End) | Some(Tok::RParen) | Some(Tok::Pipe) => break,
                    _ => args.push(self.operand()?),
                }
            }
            if args.is_empty() {
                return Err(self.err(cpos, "missing value for command"));
            }
            cmds.push(Command { pos: cpos, args });
            match self.toks.get(self.ti).map(|t| t.tok.clone()) {
                Some(Tok::Pipe) => self.ti += 1,
                _ => break,
            }
        }
        if assign {
            for v in &decl {
                if !self.declared(v) {
                    return Err(self.err(pos, format!("undefined variable \"{v}\"")));
                }
            }
        } else if let Some(scope) = self.vars.last_mut() {
            scope.extend(decl.iter().cloned());
        }
        Ok(Pipeline {
            pos,
            decl,
            assign,
            cmds,
        })
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        let Some(t) = self.toks.get(self.ti).cloned() else {
            return Err(self.err(self.pos, "unclosed action"));
        };
        self.ti += 1;
        let term = match t.tok {
            Tok::Dot => Term::Dot,
            Tok::Field(f) => Term::Field(f),
            Tok::Var(v) => {
                if !self.declared(&v) {
                    return Err(self.err(t.pos, format!("undefined variable \"{v}\"")));
                }
                Term::Var(v)
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => Term::Bool(true),
                "false" => Term::Bool(false),
                "nil" => Term::Nil,
                _ if is_keyword(&name) => {
                    return Err(self.err(t.pos, format!("unexpected <{name}> in command")));
                }
                _ => {
                    if !(self.is_func)(&name) {
                        return Err(self.err(t.pos, format!("function \"{name}\" not defined")));
                    }
                    Term::Func(name)
                }
            },
            Tok::Str(s) => Term::Str(s),
            Tok::Int(i) => Term::Int(i),
            Tok::Float(f) => Term::Float(f),
            Tok::LParen => {
                let inner = self.pipeline(false, t.pos)?;
                match self.toks.get(self.ti).map(|t| t.tok.clone()) {
                    Some(Tok::RParen) => self.ti += 1,
                    _ => return Err(self.err(t.pos, "unclosed left paren")),
                }
                Term::Pipe(Box::new(inner))
            }
            other => {
                return Err(self.err(
                    t.pos,
                    format!("unexpected {} in operand", describe_tok(&other)),
                ));
            }
        };
        let mut chain = Vec::new();
        while let Some(Token {
            tok: Tok::Field(f),
            space_before: false,
            ..
        }) = self.toks.get(self.ti).cloned()
        {
            if matches!(
                term,
                Term::Func(_)
                    | Term::Str(_)
                    | Term::Int(_)
                    | Term::Float(_)
                    | Term::Bool(_)
                    | Term::Nil
            ) {
                return Err(self.err(t.pos, format!("unexpected . after term {:?}", f)));
            }
            chain.push(f);
            self.ti += 1;
        }
        Ok(Operand {
            pos: t.pos,
            term,
            chain,
        })
    }

    /// If the action at `self.pos` is a comment, skips it and returns true.
    fn lex_comment(&mut self, start: usize) -> Result<bool, ParseError> {
        let rest = &self.src[self.pos..];
        let lead = rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
        let after = &rest[lead..];
        if !after.starts_with("/*") {
            return Ok(false);
        }
        let Some(end) = after.find("*/") else {
            return Err(self.err(start, "unclosed comment"));
        };
        let mut p = self.pos + lead + end + 2;
        let tail = &self.src[p..];
        let ws = tail.len() - tail.trim_start_matches([' ', '\t', '\r', '\n']).len();
        let t2 = &tail[ws..];
        if t2.starts_with("-}}") && ws > 0 {
            self.trim_next = true;
            p += ws + 3;
        } else if t2.starts_with("}}") {
            p += ws + 2;
        } else {
            return Err(self.err(start, "comment ends before closing delimiter"));
        }
        self.pos = p;
        Ok(true)
    }

    /// Lexes one action from `self.pos` through `}}` into `self.toks`.
    fn lex_action(&mut self, start: usize) -> Result<(), ParseError> {
        self.toks.clear();
        self.ti = 0;
        let b = self.src.as_bytes();
        let mut i = self.pos;
        let mut space = true;
        let mut depth = 0usize;
        loop {
            if i >= b.len() {
                return Err(self.err(start, "unclosed action"));
            }
            let c = b[i];
            if c == b' ' || c == b'\t' || c == b'\r' || c == b'\n' {
                // ` -}}` ends the action with a right trim.
                let mut j = i;
                while j < b.len() && matches!(b[j], b' ' | b'\t' | b'\r' | b'\n') {
                    j += 1;
                }
                if self.src[j..].starts_with("-}}") {
                    if depth > 0 {
                        return Err(self.err(j, "unclosed left paren"));
                    }
                    self.toks.push(Token {
                        tok: Tok::End,
                        pos: j,
                        space_before: true,
                    });
                    self.trim_next = true;
                    self.pos = j + 3;
                    return Ok(());
                }
                if (c == b'\n' || c == b'\r') && depth == 0 {
                    // Go allows newlines inside actions since 1.16; keep going.
                }
                i = j;
                space = true;
                continue;
            }
            if self.src[i..].starts_with("}}") {
                if depth > 0 {
                    return Err(self.err(i, "unclosed left paren"));
                }
                self.toks.push(Token {
                    tok: Tok::End,
                    pos: i,
                    space_before: space,
                });
                self.pos = i + 2;
                return Ok(());
            }
            let pos = i;
            let tok = match c {
                b'(' => {
                    depth += 1;
                    i += 1;
                    Tok::LParen
                }
                b')' => {
                    if depth == 0 {
                        return Err(self.err(i, "unexpected right paren"));
                    }
                    depth -= 1;
                    i += 1;
                    Tok::RParen
                }
                b'|' => {
                    i += 1;
                    Tok::Pipe
                }
                b',' => {
                    i += 1;
                    Tok::Comma
                }
                b':' => {
                    if b.get(i + 1) == Some(&b'=') {
                        i += 2;
                        Tok::Declare
                    } else {
                        return Err(self.err(i, "expected :="));
                    }
                }
                b'=' => {
                    i += 1;
                    Tok::Assign
                }
                b'"' => {
                    let (s, n) = lex_quoted(&self.src[i..]).map_err(|m| self.err(i, m))?;
                    i += n;
                    Tok::Str(s)
                }
                b'`' => {
                    let Some(end) = self.src[i + 1..].find('`') else {
                        return Err(self.err(i, "unterminated raw quoted string"));
                    };
                    let s = self.src[i + 1..i + 1 + end].to_string();
                    i += end + 2;
                    Tok::Str(s)
                }
                b'\'' => {
                    let (ch, n) = lex_char(&self.src[i..]).map_err(|m| self.err(i, m))?;
                    i += n;
                    Tok::Int(ch as i64)
                }
                b'$' => {
                    let n = ident_len(&self.src[i + 1..]);
                    let v = self.src[i..i + 1 + n].to_string();
                    i += 1 + n;
                    Tok::Var(v)
                }
                b'.' => {
                    let n = ident_len(&self.src[i + 1..]);
                    if n == 0 {
                        if b.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                            let (t, n) = lex_number(&self.src[i..]).map_err(|m| self.err(i, m))?;
                            i += n;
                            t
                        } else {
                            i += 1;
                            Tok::Dot
                        }
                    } else {
                        let f = self.src[i + 1..i + 1 + n].to_string();
                        i += 1 + n;
                        Tok::Field(f)
                    }
                }
                b'0'..=b'9' | b'+' | b'-' => {
                    let (t, n) = lex_number(&self.src[i..]).map_err(|m| self.err(i, m))?;
                    i += n;
                    t
                }
                _ => {
                    let n = ident_len(&self.src[i..]);
                    if n == 0 {
                        let ch = self.src[i..].chars().next().unwrap_or('?');
                        return Err(self.err(i, format!("unexpected {ch:?} in command")));
                    }
                    let id = self.src[i..i + n].to_string();
                    i += n;
                    Tok::Ident(id)
                }
            };
            self.toks.push(Token {
                tok,
                pos,
                space_before: space,
            });
            space = false;
        }
    }
}

fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "if" | "else"
            | "end"
            | "range"
            | "with"
            | "define"
            | "template"
            | "block"
            | "break"
            | "continue"
    )
}

fn describe_tok(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("<{s}>"),
        Tok::Field(f) => format!("<.{f}>"),
        Tok::Dot => "<.>".into(),
        Tok::Var(v) => format!("<{v}>"),
        Tok::Str(s) => format!("\"{s}\""),
        Tok::Int(i) => format!("<{i}>"),
        Tok::Float(f) => format!("<{f}>"),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::End => "\"}}\"".into(),
    }
}

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map(|(i, _)| i)
        .unwrap_or(s.len())
}

/// A Go number literal at the start of `s`: ints (decimal, hex, octal,
/// binary, underscores) become `Int` unless written with `.`/exponent.
fn lex_number(s: &str) -> Result<(Tok, usize), String> {
    let n = s
        .char_indices()
        .skip(1)
        .find(|(i, c)| {
            let prev = s.as_bytes()[i - 1];
            !(c.is_ascii_alphanumeric()
                || *c == '.'
                || *c == '_'
                || ((*c == '+' || *c == '-') && matches!(prev, b'e' | b'E' | b'p' | b'P')))
        })
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let text = &s[..n];
    if text == "+" || text == "-" {
        return Err(format!("bad number syntax: {text:?}"));
    }
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let lower = digits.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(bn) = lower.strip_prefix("0b") {
        i64::from_str_radix(bn, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.chars().all(|c| c.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else if lower.chars().all(|c| c.is_ascii_digit()) {
        lower.parse().ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Ok((Tok::Int(if neg { -i } else { i }), n));
    }
    match lower.parse::<f64>() {
        Ok(f) if !lower.starts_with("inf") && !lower.starts_with("nan") => {
            Ok((Tok::Float(if neg { -f } else { f }), n))
        }
        _ => Err(format!("bad number syntax: {text:?}")),
    }
}

/// A Go interpreted string literal at the start of `s` (which begins with `"`).
fn lex_quoted(s: &str) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut it = s.char_indices().skip(1);
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => return Err("unterminated quoted string".into()),
            '\\' => {
                let Some((_, e)) = it.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'x' | 'u' | 'U' => {
                        let len = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String =
                            (0..len).filter_map(|_| it.next().map(|(_, c)| c)).collect();
                        let v = u32::from_str_radix(&hex, 16)
                            .map_err(|_| "invalid escape in quoted string".to_string())?;
                        out.push(char::from_u32(v).ok_or("invalid escape in quoted string")?);
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            let (_, d) = it.next().ok_or("invalid escape in quoted string")?;
                            v = v * 8 + d.to_digit(8).ok_or("invalid escape in quoted string")?;
                        }
                        out.push(char::from_u32(v).ok_or("invalid escape in quoted string")?);
                    }
                    _ => return Err(format!("invalid escape \\{e} in quoted string")),
                }
            }
            c => out.push(c),
        }
    }
    Err("unterminated quoted string".into())
}

/// A Go character constant (`'a'`, `'\n'`) at the start of `s`.
fn lex_char(s: &str) -> Result<(char, usize), String> {
    let body = &s[1..];
    let end = body.find('\'').ok_or("unterminated character constant")?;
    let inner = &body[..end];
    let c = if let Some(esc) = inner.strip_prefix('\\') {
        let (q, _) = lex_quoted(&format!("\"\\{esc}\""))?;
        q.chars().next().ok_or("empty character constant")?
    } else {
        let mut cs = inner.chars();
        let c = cs.next().ok_or("empty character constant")?;
        if cs.next().is_some() {
            return Err("more than one character in character constant".into());
        }
        c
    };
    Ok((c, end + 2))
}
