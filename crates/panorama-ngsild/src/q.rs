//! The NGSI-LD query language (`q`): terms joined by `;` (and) and `|`
//! (or, binding looser), parentheses, comparisons `== != > >= < <=`,
//! patterns `~=` / `!~=`, value lists (`a,b`) and ranges (`a..b`),
//! attribute paths with sub-attributes (`a.b`) and value paths (`a[x.y]`).

use crate::context::Context;
use crate::model::Doc;
use regex::Regex;
use serde_json::Value;

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Every part holds.
    And(Vec<Query>),
    /// Some part holds.
    Or(Vec<Query>),
    /// One comparison (or existence test).
    Term(Term),
}

/// One attribute test.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// Attribute, then sub-attributes (as written).
    pub path: Vec<String>,
    /// Path inside the value (`a[x.y]`).
    pub value_path: Vec<String>,
    /// The comparison; `None` tests that the attribute exists.
    pub test: Option<(Op, Operand)>,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `~=`
    Match,
    /// `!~=`
    NotMatch,
}

/// The right-hand side.
#[derive(Debug, Clone)]
pub enum Operand {
    /// One value.
    One(Value),
    /// Any of these values.
    List(Vec<Value>),
    /// Between two values, inclusive.
    Range(Value, Value),
    /// A regular expression.
    Pattern(Regex),
}

impl PartialEq for Operand {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::One(a), Self::One(b)) => a == b,
            (Self::List(a), Self::List(b)) => a == b,
            (Self::Range(a, b), Self::Range(c, d)) => a == c && b == d,
            (Self::Pattern(a), Self::Pattern(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

/// Parses `q`; the error says what is wrong and where.
pub fn parse(src: &str) -> Result<Query, String> {
    let mut p = Parser {
        s: src.as_bytes(),
        src,
        i: 0,
    };
    if src.trim().is_empty() {
        return Err("must not be empty".into());
    }
    let q = p.or()?;
    if p.i != p.s.len() {
        return Err(format!("unexpected '{}' at position {}", p.rest(), p.i));
    }
    Ok(q)
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        self.src.get(self.i..).unwrap_or("")
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn or(&mut self) -> Result<Query, String> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(b'|') {
            self.i += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Query::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Query, String> {
        let mut parts = vec![self.atom()?];
        while self.peek() == Some(b';') {
            self.i += 1;
            parts.push(self.atom()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Query::And(parts)
        })
    }

    fn atom(&mut self) -> Result<Query, String> {
        if self.peek() == Some(b'(') {
            self.i += 1;
            let q = self.or()?;
            if self.peek() != Some(b')') {
                return Err(format!("missing ')' at position {}", self.i));
            }
            self.i += 1;
            return Ok(q);
        }
        self.term().map(Query::Term)
    }

    fn name(&mut self) -> Result<String, String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, b'_' | b':' | b'/' | b'#' | b'-' | b'@') {
                // A ':' followed by nothing name-like still belongs to a
                // compact IRI (prefix:term); operators never contain ':'.
                self.i += 1;
            } else {
                break;
            }
        }
        if self.i == start {
            return Err(format!("expected an attribute name at position {start}"));
        }
        Ok(self.src.get(start..self.i).unwrap_or_default().to_string())
    }

    fn term(&mut self) -> Result<Term, String> {
        let mut path = vec![self.name()?];
        while self.peek() == Some(b'.') {
            self.i += 1;
            path.push(self.name()?);
        }
        let mut value_path = Vec::new();
        if self.peek() == Some(b'[') {
            self.i += 1;
            value_path.push(self.name()?);
            while self.peek() == Some(b'.') {
                self.i += 1;
                value_path.push(self.name()?);
            }
            if self.peek() != Some(b']') {
                return Err(format!("missing ']' at position {}", self.i));
            }
            self.i += 1;
        }
        let rest = self.rest();
        let op = [
            ("!~=", Op::NotMatch),
            ("~=", Op::Match),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">=", Op::Ge),
            ("<=", Op::Le),
            (">", Op::Gt),
            ("<", Op::Lt),
        ]
        .into_iter()
        .find(|(t, _)| rest.starts_with(t));
        let Some((tok, op)) = op else {
            return match self.peek() {
                None | Some(b';' | b'|' | b')') => Ok(Term {
                    path,
                    value_path,
                    test: None,
                }),
                Some(_) => Err(format!(
                    "expected an operator (==, !=, >, >=, <, <=, ~=, !~=) at position {}",
                    self.i
                )),
            };
        };
        self.i += tok.len();
        let operand = if matches!(op, Op::Match | Op::NotMatch) {
            let raw = self.raw_value()?;
            let text = unquote(&raw).unwrap_or(raw);
            Operand::Pattern(
                Regex::new(&text).map_err(|e| format!("'{text}' is not a valid pattern: {e}"))?,
            )
        } else {
            let first = self.value()?;
            if self.rest().starts_with("..") {
                self.i += 2;
                let second = self.value()?;
                Operand::Range(first, second)
            } else if self.peek() == Some(b',') {
                let mut list = vec![first];
                while self.peek() == Some(b',') {
                    self.i += 1;
                    list.push(self.value()?);
                }
                Operand::List(list)
            } else {
                Operand::One(first)
            }
        };
        if matches!(operand, Operand::List(_) | Operand::Range(..))
            && !matches!(op, Op::Eq | Op::Ne)
        {
            return Err("value lists and ranges go only with == or !=".into());
        }
        Ok(Term {
            path,
            value_path,
            test: Some((op, operand)),
        })
    }

    fn raw_value(&mut self) -> Result<String, String> {
        let start = self.i;
        if self.peek() == Some(b'"') {
            self.i += 1;
            while let Some(c) = self.peek() {
                self.i += 1;
                if c == b'\\' && self.peek().is_some_and(|n| n.is_ascii()) {
                    self.i += 1;
                } else if c == b'"' {
                    return Ok(self.src.get(start..self.i).unwrap_or_default().to_string());
                }
            }
            return Err(format!("unterminated string starting at position {start}"));
        }
        let rest = self.rest();
        let end = rest
            .char_indices()
            .find(|(off, c)| matches!(c, ';' | '|' | ')' | ',') || rest[*off..].starts_with(".."))
            .map_or(rest.len(), |(off, _)| off);
        self.i += end;
        if self.i == start {
            return Err(format!("expected a value at position {start}"));
        }
        Ok(self.src.get(start..self.i).unwrap_or_default().to_string())
    }

    fn value(&mut self) -> Result<Value, String> {
        let raw = self.raw_value()?;
        if let Some(s) = unquote(&raw) {
            return Ok(Value::String(s));
        }
        match raw.as_str() {
            "true" => return Ok(Value::Bool(true)),
            "false" => return Ok(Value::Bool(false)),
            _ => {}
        }
        if let Ok(n) = raw.parse::<f64>()
            && n.is_finite()
            && let Some(num) = serde_json::Number::from_f64(n)
        {
            return Ok(Value::Number(num));
        }
        // Unquoted date-times and URIs compare as text.
        if raw.chars().any(|c| c.is_whitespace() || c == '"') {
            return Err(format!(
                "'{raw}' is not a number, a quoted string, a boolean or a date-time"
            ));
        }
        Ok(Value::String(raw))
    }
}

fn unquote(raw: &str) -> Option<String> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    serde_json::from_str::<String>(&format!("\"{inner}\"")).ok()
}

/// Whether a stored entity matches the query (names expanded with `ctx`).
pub fn matches(q: &Query, doc: &Doc, ctx: &Context) -> bool {
    match q {
        Query::And(parts) => parts.iter().all(|p| matches(p, doc, ctx)),
        Query::Or(parts) => parts.iter().any(|p| matches(p, doc, ctx)),
        Query::Term(t) => term_matches(t, doc, ctx),
    }
}

/// The attribute names (expanded) a query refers to at the top level.
pub fn attributes(q: &Query, ctx: &Context, out: &mut Vec<String>) {
    match q {
        Query::And(p) | Query::Or(p) => p.iter().for_each(|p| attributes(p, ctx, out)),
        Query::Term(t) => {
            if let Some(a) = t.path.first() {
                out.push(ctx.expand(a));
            }
        }
    }
}

fn instance_value(inst: &Value) -> Option<&Value> {
    let o = inst.as_object()?;
    [
        "value",
        "object",
        "languageMap",
        "valueList",
        "objectList",
        "json",
        "vocab",
    ]
    .iter()
    .find_map(|k| o.get(*k))
}

fn candidates<'a>(t: &Term, doc: &'a Doc, ctx: &Context) -> Vec<&'a Value> {
    let Some(first) = t.path.first() else {
        return Vec::new();
    };
    let mut current: Vec<&Value> = match doc.get(&ctx.expand(first)) {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
        None => return Vec::new(),
    };
    let mut leaf_is_meta = None;
    for seg in &t.path[1..] {
        let mut next = Vec::new();
        for inst in &current {
            let Some(o) = inst.as_object() else { continue };
            if matches!(
                seg.as_str(),
                "observedAt" | "createdAt" | "modifiedAt" | "unitCode" | "datasetId"
            ) {
                if let Some(v) = o.get(seg) {
                    next.push(v);
                }
                leaf_is_meta = Some(());
                continue;
            }
            match o.get(&ctx.expand(seg)) {
                Some(Value::Array(a)) => next.extend(a.iter()),
                Some(v) => next.push(v),
                None => {}
            }
        }
        current = next;
    }
    let mut values: Vec<&Value> = if leaf_is_meta.is_some() {
        current
    } else {
        current.into_iter().filter_map(instance_value).collect()
    };
    for seg in &t.value_path {
        values = values.into_iter().filter_map(|v| v.get(seg)).collect();
    }
    // An array value matches when any of its items does.
    values
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(a) => a.iter().collect::<Vec<_>>(),
            v => vec![v],
        })
        .collect()
}

/// The values an attribute path (`attr`, `attr.sub`, `attr.observedAt`)
/// reaches in an entity.
pub fn values_at<'a>(path: &[String], doc: &'a Doc, ctx: &Context) -> Vec<&'a Value> {
    let t = Term {
        path: path.to_vec(),
        value_path: Vec::new(),
        test: None,
    };
    candidates(&t, doc, ctx)
}

/// Orders two values of the same kind (numbers, date-times, text, booleans).
pub fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    cmp(a, b)
}

fn cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => {
            let tx = chrono::DateTime::parse_from_rfc3339(x);
            let ty = chrono::DateTime::parse_from_rfc3339(y);
            match (tx, ty) {
                (Ok(tx), Ok(ty)) => Some(tx.cmp(&ty)),
                _ => Some(x.cmp(y)),
            }
        }
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn term_matches(t: &Term, doc: &Doc, ctx: &Context) -> bool {
    let values = candidates(t, doc, ctx);
    let Some((op, operand)) = &t.test else {
        return !values.is_empty();
    };
    use std::cmp::Ordering::*;
    let one = |v: &Value| -> bool {
        match (op, operand) {
            (Op::Match, Operand::Pattern(r)) => v.as_str().is_some_and(|s| r.is_match(s)),
            (Op::NotMatch, Operand::Pattern(r)) => v.as_str().is_some_and(|s| !r.is_match(s)),
            (Op::Eq, Operand::List(l)) => l.iter().any(|x| cmp(v, x) == Some(Equal)),
            (Op::Ne, Operand::List(l)) => l.iter().all(|x| cmp(v, x) != Some(Equal)),
            (Op::Eq, Operand::Range(lo, hi)) => {
                matches!(cmp(v, lo), Some(Greater | Equal))
                    && matches!(cmp(v, hi), Some(Less | Equal))
            }
            (Op::Ne, Operand::Range(lo, hi)) => {
                !(matches!(cmp(v, lo), Some(Greater | Equal))
                    && matches!(cmp(v, hi), Some(Less | Equal)))
            }
            (op, Operand::One(x)) => {
                let c = cmp(v, x);
                match op {
                    Op::Eq => c == Some(Equal) || v == x,
                    Op::Ne => c != Some(Equal) && v != x,
                    Op::Gt => c == Some(Greater),
                    Op::Ge => matches!(c, Some(Greater | Equal)),
                    Op::Lt => c == Some(Less),
                    Op::Le => matches!(c, Some(Less | Equal)),
                    _ => false,
                }
            }
            _ => false,
        }
    };
    values.into_iter().any(one)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::DEFAULT_VOCAB;
    use proptest::prelude::*;
    use serde_json::json;

    fn doc() -> Doc {
        let v = json!({
            "id": "urn:ngsi-ld:B:1",
            "type": [format!("{DEFAULT_VOCAB}Building")],
            format!("{DEFAULT_VOCAB}height"): [{"type": "Property", "value": 12.5,
                "observedAt": "2026-01-01T00:00:00Z",
                format!("{DEFAULT_VOCAB}accuracy"): [{"type": "Property", "value": 0.5}]}],
            format!("{DEFAULT_VOCAB}name"): [{"type": "Property", "value": "Tower A"}],
            format!("{DEFAULT_VOCAB}address"): [{"type": "Property", "value": {"city": "Dĩ An"}}],
            format!("{DEFAULT_VOCAB}owner"): [{"type": "Relationship", "object": "urn:ngsi-ld:P:1"}],
        });
        v.as_object().unwrap().clone()
    }

    fn eval(q: &str) -> bool {
        matches(&parse(q).unwrap(), &doc(), &Context::core())
    }

    #[test]
    fn comparisons_and_logic() {
        assert!(eval("height>10"));
        assert!(!eval("height<10"));
        assert!(eval("height==12.5"));
        assert!(eval("height==10..20"));
        assert!(eval("height==1,12.5"));
        assert!(eval("name==\"Tower A\""));
        assert!(eval("name~=Tow.*"));
        assert!(eval("name!~=^X"));
        assert!(eval("height>20|name==\"Tower A\""));
        assert!(!eval("height>20;name==\"Tower A\""));
        assert!(eval("(height>20|height<13);owner==urn:ngsi-ld:P:1"));
        assert!(eval("height.accuracy<1"));
        assert!(eval("height.observedAt>=2025-12-31T00:00:00Z"));
        assert!(eval("address[city]==\"Dĩ An\""));
        assert!(eval("owner"));
        assert!(!eval("missing"));
        assert!(!eval("missing!=3"));
    }

    #[test]
    fn bad_queries_say_why() {
        for bad in [
            "",
            "height>",
            "height=5",
            "(height>1",
            "height>1;",
            "height[x>1",
            "a~=(",
            "a>1,2",
            "\"x\"==1",
        ] {
            assert!(parse(bad).is_err(), "{bad} should not parse");
        }
        assert!(parse("height=5").unwrap_err().contains("operator"));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = parse(&s);
        }

        #[test]
        fn generated_comparisons_round_trip(name in "[a-z][a-zA-Z0-9_]{0,10}", n in -1.0e6f64..1.0e6, op in 0usize..6) {
            let ops = ["==", "!=", ">", ">=", "<", "<="];
            let q = format!("{name}{}{n}", ops[op]);
            let parsed = parse(&q).unwrap();
            let Query::Term(t) = parsed else { panic!("{q} is not one term") };
            prop_assert_eq!(t.path, vec![name]);
            let Some((_, Operand::One(Value::Number(v)))) = t.test else { panic!("{q}: no number") };
            prop_assert!((v.as_f64().unwrap() - n).abs() <= n.abs() * 1e-12);
        }

        #[test]
        fn numeric_comparisons_agree_with_f64(a in -1000i32..1000, b in -1000i32..1000) {
            let d = {
                let mut d = doc();
                d.insert(format!("{DEFAULT_VOCAB}x"), json!([{"type": "Property", "value": a}]));
                d
            };
            let ctx = Context::core();
            prop_assert_eq!(matches(&parse(&format!("x>{b}")).unwrap(), &d, &ctx), a > b);
            prop_assert_eq!(matches(&parse(&format!("x<={b}")).unwrap(), &d, &ctx), a <= b);
            prop_assert_eq!(matches(&parse(&format!("x!={b}")).unwrap(), &d, &ctx), a != b);
        }
    }
}
