//! A small parser and evaluator for ConnectWise Manage `conditions` query strings.
//!
//! Grammar (keywords case-insensitive):
//! ```text
//! expr    := and ( OR and )*
//! and     := unary ( AND unary )*
//! unary   := NOT unary | '(' expr ')' | cmp
//! cmp     := path op value
//! path    := ident ( '/' ident )*            e.g. company/id, _info/lastUpdated
//! op      := = | != | <> | < | <= | > | >= | contains | like | in
//!          | not contains | not like | not in
//! value   := "string" | number | True | False | null | [datetime] | '(' value ( ',' value )* ')'
//! ```
//! Semantics (as observed on Manage, whose SQL collation is case-insensitive): string
//! comparisons ignore case, `like` uses `*` as wildcard, `contains` is a substring test,
//! `lastUpdated` is an alias of `_info/lastUpdated`, a path through an array matches when any
//! element matches, a missing field compares as `null`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value as Json;

/// A literal on the right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    Date(DateTime<Utc>),
    List(Vec<Literal>),
}

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    NotContains,
    Like,
    NotLike,
    In,
    NotIn,
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Cmp {
        path: Vec<String>,
        op: Op,
        value: Literal,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

/// Why a condition string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    /// Byte offset in the input.
    pub position: usize,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at position {})", self.message, self.position)
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Sym(&'static str),
    Str(String),
    Date(String),
    Word(String),
}

fn tokenize(input: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |message: &str, position: usize| ParseError {
        message: message.to_string(),
        position,
    };
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                out.push((Tok::LParen, start));
                i += 1;
            }
            b')' => {
                out.push((Tok::RParen, start));
                i += 1;
            }
            b',' => {
                out.push((Tok::Comma, start));
                i += 1;
            }
            b'=' => {
                out.push((Tok::Sym("="), start));
                i += 1;
            }
            b'!' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    out.push((Tok::Sym("!="), start));
                    i += 2;
                } else {
                    return Err(err("expected '=' after '!'", start));
                }
            }
            b'<' => match bytes.get(i + 1) {
                Some(b'=') => {
                    out.push((Tok::Sym("<="), start));
                    i += 2;
                }
                Some(b'>') => {
                    out.push((Tok::Sym("!="), start));
                    i += 2;
                }
                _ => {
                    out.push((Tok::Sym("<"), start));
                    i += 1;
                }
            },
            b'>' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    out.push((Tok::Sym(">="), start));
                    i += 2;
                } else {
                    out.push((Tok::Sym(">"), start));
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                let mut s = String::new();
                let mut closed = false;
                let mut chars = input[i..].char_indices();
                while let Some((off, ch)) = chars.next() {
                    match ch {
                        '\\' => match chars.next() {
                            Some((_, esc)) => s.push(esc),
                            None => break,
                        },
                        '"' => {
                            i += off + 1;
                            closed = true;
                            break;
                        }
                        _ => s.push(ch),
                    }
                }
                if !closed {
                    return Err(err("unterminated string literal", start));
                }
                out.push((Tok::Str(s), start));
            }
            b'[' => match input[i + 1..].find(']') {
                Some(end) => {
                    out.push((
                        Tok::Date(input[i + 1..i + 1 + end].trim().to_string()),
                        start,
                    ));
                    i += end + 2;
                }
                None => return Err(err("unterminated datetime literal", start)),
            },
            _ if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'/' | b'.' | b'-' | b'+') => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'/' | b'.' | b'-' | b'+'))
                {
                    i += 1;
                }
                out.push((Tok::Word(input[start..i].to_string()), start));
            }
            _ => return Err(err(&format!("unexpected character '{}'", c as char), start)),
        }
    }
    Ok(out)
}

/// Parses a datetime literal (the text between `[` and `]`).
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return Some(n.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
}

fn is_kw(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

const KEYWORDS: &[&str] = &["and", "or", "not", "in", "like", "contains"];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|(t, _)| t)
    }
    fn here(&self) -> usize {
        self.toks.get(self.pos).map(|(_, p)| *p).unwrap_or(self.end)
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            message: message.into(),
            position: self.here(),
        })
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while is_kw(self.peek(), "or") {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.unary()?;
        while is_kw(self.peek(), "and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if is_kw(self.peek(), "not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.expr()?;
            if self.peek() != Some(&Tok::RParen) {
                return self.err("expected ')'");
            }
            self.pos += 1;
            return Ok(e);
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, ParseError> {
        let path = match self.peek() {
            Some(Tok::Word(w))
                if !KEYWORDS.iter().any(|k| w.eq_ignore_ascii_case(k))
                    && (w.as_bytes()[0].is_ascii_alphabetic() || w.starts_with('_')) =>
            {
                let w = w.clone();
                self.pos += 1;
                w
            }
            None => return self.err("expected a field name, found end of input"),
            _ => return self.err("expected a field name"),
        };
        let segments: Vec<String> = path.split('/').map(str::to_string).collect();
        if segments.iter().any(|s| {
            s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        }) {
            return self.err(format!("invalid field reference '{path}'"));
        }
        let op = match self.peek() {
            Some(Tok::Sym(s)) => {
                let op = match *s {
                    "=" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    _ => Op::Ge,
                };
                self.pos += 1;
                op
            }
            t if is_kw(t, "contains") => {
                self.pos += 1;
                Op::Contains
            }
            t if is_kw(t, "like") => {
                self.pos += 1;
                Op::Like
            }
            t if is_kw(t, "in") => {
                self.pos += 1;
                Op::In
            }
            t if is_kw(t, "not") => {
                let op = match self.peek_at(1) {
                    n if is_kw(n, "in") => Op::NotIn,
                    n if is_kw(n, "like") => Op::NotLike,
                    n if is_kw(n, "contains") => Op::NotContains,
                    _ => {
                        self.pos += 1;
                        return self.err("expected 'in', 'like' or 'contains' after 'not'");
                    }
                };
                self.pos += 2;
                op
            }
            _ => return self.err(format!("expected an operator after '{path}'")),
        };
        let value = if matches!(op, Op::In | Op::NotIn) {
            if self.peek() != Some(&Tok::LParen) {
                return self.err("expected '(' to start the list of 'in'");
            }
            self.pos += 1;
            let mut items = vec![self.scalar()?];
            loop {
                match self.next() {
                    Some(Tok::Comma) => items.push(self.scalar()?),
                    Some(Tok::RParen) => break,
                    _ => {
                        self.pos -= 1;
                        return self.err("expected ',' or ')' in list");
                    }
                }
            }
            Literal::List(items)
        } else {
            self.scalar()?
        };
        Ok(Expr::Cmp {
            path: segments,
            op,
            value,
        })
    }

    fn scalar(&mut self) -> Result<Literal, ParseError> {
        let at = self.pos;
        match self.next() {
            Some(Tok::Str(s)) => Ok(Literal::Str(s)),
            Some(Tok::Date(d)) => match parse_datetime(&d) {
                Some(dt) => Ok(Literal::Date(dt)),
                None => {
                    self.pos = at;
                    self.err(format!("invalid datetime '[{d}]'"))
                }
            },
            Some(Tok::Word(w)) => {
                if w.eq_ignore_ascii_case("true") {
                    Ok(Literal::Bool(true))
                } else if w.eq_ignore_ascii_case("false") {
                    Ok(Literal::Bool(false))
                } else if w.eq_ignore_ascii_case("null") {
                    Ok(Literal::Null)
                } else if let Ok(n) = w.parse::<f64>() {
                    Ok(Literal::Num(n))
                } else {
                    self.pos = at;
                    self.err(format!(
                        "invalid value '{w}' (strings must be in double quotes)"
                    ))
                }
            }
            None => {
                self.pos = at;
                self.err("expected a value, found end of input")
            }
            _ => {
                self.pos = at;
                self.err("expected a value")
            }
        }
    }
}

/// Parses a `conditions` string.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let toks = tokenize(input)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end: input.len(),
    };
    if p.peek().is_none() {
        return p.err("empty condition");
    }
    let e = p.expr()?;
    if p.peek().is_some() {
        return p.err("unexpected token");
    }
    Ok(e)
}

impl Expr {
    /// All field paths referenced.
    pub fn paths(&self) -> Vec<&[String]> {
        let mut out = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths<'a>(&'a self, out: &mut Vec<&'a [String]>) {
        match self {
            Expr::Cmp { path, .. } => out.push(path),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.collect_paths(out);
                b.collect_paths(out);
            }
            Expr::Not(a) => a.collect_paths(out),
        }
    }

    /// Evaluates against a record's JSON.
    pub fn matches(&self, record: &Json) -> bool {
        match self {
            Expr::And(a, b) => a.matches(record) && b.matches(record),
            Expr::Or(a, b) => a.matches(record) || b.matches(record),
            Expr::Not(a) => !a.matches(record),
            Expr::Cmp { path, op, value } => {
                let mut found = Vec::new();
                let aliased;
                let path: &[String] = if path.len() == 1
                    && path[0].eq_ignore_ascii_case("lastUpdated")
                    && get_ci(record, "lastUpdated").is_none()
                {
                    aliased = ["_info".to_string(), "lastUpdated".to_string()];
                    &aliased
                } else {
                    path
                };
                resolve(record, path, &mut found);
                if found.is_empty() {
                    found.push(&Json::Null);
                }
                match op {
                    Op::Ne => !found.iter().any(|v| cmp_one(v, Op::Eq, value)),
                    Op::NotContains => !found.iter().any(|v| cmp_one(v, Op::Contains, value)),
                    Op::NotLike => !found.iter().any(|v| cmp_one(v, Op::Like, value)),
                    Op::NotIn => !found.iter().any(|v| cmp_one(v, Op::In, value)),
                    _ => found.iter().any(|v| cmp_one(v, *op, value)),
                }
            }
        }
    }
}

/// Case-insensitive object key lookup (exact match first).
pub(crate) fn get_ci<'a>(v: &'a Json, key: &str) -> Option<&'a Json> {
    let obj = v.as_object()?;
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn resolve<'a>(v: &'a Json, path: &[String], out: &mut Vec<&'a Json>) {
    match v {
        Json::Array(items) => {
            for item in items {
                resolve(item, path, out);
            }
        }
        _ if path.is_empty() => out.push(v),
        Json::Object(_) => {
            if let Some(child) = get_ci(v, &path[0]) {
                resolve(child, &path[1..], out);
            }
        }
        _ => {}
    }
}

fn glob(pattern: &[char], text: &[char]) -> bool {
    // Iterative wildcard match with backtracking on the last '*'.
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && pattern[p] != '*' && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == '*' {
        p += 1;
    }
    p == pattern.len()
}

fn ord_holds(op: Op, ord: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Op::Eq => ord == Equal,
        Op::Lt => ord == Less,
        Op::Le => ord != Greater,
        Op::Gt => ord == Greater,
        Op::Ge => ord != Less,
        _ => false,
    }
}

fn cmp_one(v: &Json, op: Op, lit: &Literal) -> bool {
    if let Literal::List(items) = lit {
        return op == Op::In && items.iter().any(|i| cmp_one(v, Op::Eq, i));
    }
    if op == Op::In {
        return cmp_one(v, Op::Eq, lit);
    }
    match lit {
        Literal::Null => op == Op::Eq && v.is_null(),
        Literal::Bool(b) => op == Op::Eq && v.as_bool() == Some(*b),
        Literal::Num(n) => {
            let x = match v {
                Json::Number(x) => x.as_f64(),
                Json::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match x {
                Some(x) => match op {
                    Op::Contains | Op::Like => {
                        let s = v.to_string();
                        s.trim_matches('"') == fmt_num(*n)
                    }
                    _ => x.partial_cmp(n).is_some_and(|o| ord_holds(op, o)),
                },
                None => false,
            }
        }
        Literal::Date(d) => match v.as_str().and_then(parse_datetime) {
            Some(x) => ord_holds(op, x.cmp(d)),
            None => false,
        },
        Literal::Str(s) => {
            let text = match v {
                Json::String(t) => t.clone(),
                Json::Number(n) => {
                    // `id = "5"` style comparisons against numbers.
                    if let (Some(x), Ok(y)) = (n.as_f64(), s.trim().parse::<f64>()) {
                        if !matches!(op, Op::Contains | Op::Like) {
                            return x.partial_cmp(&y).is_some_and(|o| ord_holds(op, o));
                        }
                    }
                    n.to_string()
                }
                Json::Bool(b) => b.to_string(),
                _ => return false,
            };
            let text = text.to_lowercase();
            let s = s.to_lowercase();
            match op {
                Op::Contains => text.contains(&s),
                Op::Like => {
                    let p: Vec<char> = s.chars().collect();
                    let t: Vec<char> = text.chars().collect();
                    glob(&p, &t)
                }
                _ => ord_holds(op, text.as_str().cmp(s.as_str())),
            }
        }
        Literal::List(_) => false,
    }
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec() -> Json {
        json!({
            "id": 42,
            "identifier": "ACME",
            "name": "Acme Corp (Main)",
            "deletedFlag": false,
            "quantity": 2.5,
            "status": {"id": 1, "name": "Active"},
            "types": [{"id": 1, "name": "Client"}, {"id": 5, "name": "Partner"}],
            "defaultContact": null,
            "_info": {"lastUpdated": "2026-03-01T10:00:00Z"}
        })
    }

    #[test]
    fn table() {
        let r = rec();
        let cases: &[(&str, bool)] = &[
            ("id = 42", true),
            ("id=41", false),
            ("id != 41", true),
            ("id <> 42", false),
            ("id < 43", true),
            ("id <= 42", true),
            ("id > 42", false),
            ("id >= 42", true),
            ("quantity > 2", true),
            ("quantity = 2.5", true),
            ("identifier = \"acme\"", true),
            ("identifier = \"ACME\"", true),
            ("identifier != \"ACME\"", false),
            ("name contains \"corp\"", true),
            ("name not contains \"corp\"", false),
            ("name like \"Acme*\"", true),
            ("name like \"*main)\"", true),
            ("name like \"A*C*(Main)\"", true),
            ("name like \"Acme\"", false),
            ("name not like \"X*\"", true),
            ("id in (1,2,42)", true),
            ("id in (1, 2)", false),
            ("id not in (1, 2)", true),
            ("identifier in (\"x\", \"acme\")", true),
            ("deletedFlag = False", true),
            ("deletedFlag = true", false),
            ("defaultContact = null", true),
            ("defaultContact != null", false),
            ("identifier = null", false),
            ("missingField = null", true),
            ("status/name = \"Active\"", true),
            ("status/id = 2", false),
            ("types/name = \"Partner\"", true),
            ("types/id in (7, 5)", true),
            ("lastUpdated > [2026-02-28T00:00:00Z]", true),
            ("lastUpdated > [2026-03-01T10:00:00Z]", false),
            ("lastUpdated >= [2026-03-01T10:00:00Z]", true),
            ("_info/lastUpdated < [2026-03-02]", true),
            ("LASTUPDATED = [2026-03-01T10:00:00]", true),
            ("id = 42 and identifier = \"ACME\"", true),
            ("id = 42 AND identifier = \"nope\"", false),
            ("id = 1 or identifier = \"ACME\"", true),
            ("id = 1 OR id = 2", false),
            ("id = 1 and id = 2 or id = 42", true),
            ("id = 1 and (id = 2 or id = 42)", false),
            ("(id = 1 or id = 42) and (deletedFlag = false)", true),
            ("((id = 42))", true),
            ("not id = 42", false),
            ("id = \"42\"", true),
            ("name = \"Acme Corp (Main)\"", true),
            ("name = \"with \\\"quote\"", false),
        ];
        for (c, expected) in cases {
            let e = parse(c).unwrap_or_else(|err| panic!("{c}: {err}"));
            assert_eq!(e.matches(&r), *expected, "condition: {c}");
        }
    }

    #[test]
    fn errors() {
        for c in [
            "",
            "   ",
            "id =",
            "id",
            "= 5",
            "id == 5",
            "id = 5 and",
            "id = 5 or or id = 6",
            "(id = 5",
            "id = 5)",
            "id in 5",
            "id in (5,",
            "id in (5 6)",
            "name = \"unterminated",
            "name = unquoted",
            "lastUpdated > [not a date]",
            "lastUpdated > [2026-01-01",
            "id ! 5",
            "id not 5",
            "id = 5 id = 6",
            "id ~ 5",
            "company//id = 5",
        ] {
            assert!(parse(c).is_err(), "should fail: {c:?}");
        }
    }

    #[test]
    fn parse_shape() {
        let e = parse("company/id=5 and (a like \"x*\" or b in (1,2))").unwrap();
        assert_eq!(
            e.paths(),
            vec![
                &["company".to_string(), "id".to_string()][..],
                &["a".to_string()][..],
                &["b".to_string()][..]
            ]
        );
        match e {
            Expr::And(l, r) => {
                assert_eq!(
                    *l,
                    Expr::Cmp {
                        path: vec!["company".into(), "id".into()],
                        op: Op::Eq,
                        value: Literal::Num(5.0)
                    }
                );
                assert!(matches!(*r, Expr::Or(_, _)));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
