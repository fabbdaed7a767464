//! Cheap checks on the raw payload that a rule's payload condition implies.
//!
//! A condition such as `regexp_like(json_as_text(data, 'ScriptBlockText'), '(?i)Set-Smb...
//! -EnableInsecureGuestLogons...')` parses every row's JSON and runs the regex over the
//! field. A row it keeps has, somewhere in its `data` text, the letters and digits the regex
//! requires in a row ("configuration", "enablein", ...): `data ILIKE '%configuration%'`
//! is implied by the condition, and evaluated before it, it spares the JSON parse and the
//! regex for the rows that lack them.
//!
//! Exactness: only ASCII letters and digits are taken. `data` is JSON written by evtxsql's
//! ingest, which escapes quotes, backslashes and control characters and nothing else, so a
//! field's letters and digits stand in `data` as they are. Under `(?i)` a letter is taken only
//! when its case class is its two ASCII cases: `k` and `s` also match the Kelvin sign and the
//! long s, so they end a run; a class of other characters beside a letter (`[0-9a]`) ends one
//! too. A check is made only where the condition surely implies it:
//! `regexp_like` with a literal pattern (two arguments) and `LIKE`/`ILIKE` with a literal
//! pattern, over `json_as_text(data, '...')`, and `AND`/`OR` of such; anything else gives none.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use datafusion::prelude::{col, lit};
use regex_syntax::hir::{Class, Hir, HirKind};

/// Runs shorter than this are not worth a pass over the payload.
const MIN_RUN: usize = 4;

/// At most this many runs of one pattern are checked (longest first).
const MAX_RUNS: usize = 3;

/// A check on `payload` implied by `condition`, if one can be made.
pub(crate) fn implied_check(condition: &Expr, payload: &str) -> Option<Expr> {
    match condition {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (l, r) = (implied_check(left, payload), implied_check(right, payload));
            match op {
                Operator::And => match (l, r) {
                    (Some(l), Some(r)) => Some(l.and(r)),
                    (one, other) => one.or(other),
                },
                Operator::Or => Some(l?.or(r?)),
                // `regexp_like(x, 'p')` as DataFusion's simplifier leaves it: `x ~ 'p'`.
                Operator::RegexMatch | Operator::RegexIMatch => {
                    let Expr::Literal(pattern, _) = right.as_ref() else {
                        return None;
                    };
                    if !is_payload_field(left, payload) {
                        return None;
                    }
                    let pattern = string(pattern)?;
                    let runs = if *op == Operator::RegexIMatch {
                        regex_runs(&format!("(?i){pattern}"))
                    } else {
                        regex_runs(pattern)
                    };
                    checks(&runs, payload)
                }
                _ => None,
            }
        }
        Expr::ScalarFunction(f) if f.name() == "regexp_like" => match f.args.as_slice() {
            [text, Expr::Literal(pattern, _)] if is_payload_field(text, payload) => {
                let runs = regex_runs(string(pattern)?);
                checks(&runs, payload)
            }
            _ => None,
        },
        Expr::Like(like) if !like.negated && like.escape_char.is_none() => {
            let Expr::Literal(pattern, _) = like.pattern.as_ref() else {
                return None;
            };
            if !is_payload_field(&like.expr, payload) {
                return None;
            }
            checks(&like_runs(string(pattern)?), payload)
        }
        _ => None,
    }
}

/// `data ILIKE '%run%'` for each of the longest runs, longest first.
fn checks(runs: &[String], payload: &str) -> Option<Expr> {
    let mut runs: Vec<&String> = runs.iter().filter(|r| r.len() >= MIN_RUN).collect();
    runs.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    runs.dedup();
    runs.into_iter()
        .take(MAX_RUNS)
        .map(|r| col(payload).ilike(lit(format!("%{r}%"))))
        .reduce(Expr::and)
}

/// Whether `e` is a field read out of the payload: `json_as_text(data, 'name')` (or
/// `json_get_str`), possibly cast to a string type.
fn is_payload_field(e: &Expr, payload: &str) -> bool {
    match e {
        Expr::Cast(c) => is_payload_field(&c.expr, payload),
        Expr::ScalarFunction(f) if matches!(f.name(), "json_as_text" | "json_get_str") => {
            matches!(f.args.as_slice(), [Expr::Column(c), Expr::Literal(_, _)]
                if c.name == payload)
        }
        _ => false,
    }
}

fn string(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Some(s),
        _ => None,
    }
}

/// The runs of letters and digits a LIKE pattern requires (`%` and `_` end a run; a pattern
/// with a backslash gives none: it may escape a wildcard).
fn like_runs(pattern: &str) -> Vec<String> {
    if pattern.contains('\\') {
        return Vec::new();
    }
    let mut runs = Vec::new();
    let mut run = String::new();
    for c in pattern.chars() {
        if c.is_ascii_alphanumeric() {
            run.push(c.to_ascii_lowercase());
        } else if !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// The runs of ASCII letters and digits that every match of `pattern` contains, lower case
/// (compared without case). None when the pattern does not parse as the `regex` crate reads it.
fn regex_runs(pattern: &str) -> Vec<String> {
    match regex_syntax::Parser::new().parse(pattern) {
        Ok(hir) => required(&hir),
        Err(_) => Vec::new(),
    }
}

/// The runs every match of `hir` contains.
fn required(hir: &Hir) -> Vec<String> {
    match hir.kind() {
        HirKind::Concat(parts) => runs_of(parts),
        HirKind::Literal(_) | HirKind::Class(_) => runs_of(std::slice::from_ref(hir)),
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required(&r.sub),
        _ => Vec::new(),
    }
}

/// The runs of a sequence of parts, each of which every match goes through in turn.
fn runs_of(parts: &[Hir]) -> Vec<String> {
    let mut runs = Vec::new();
    let mut run = String::new();
    for part in parts {
        match part.kind() {
            HirKind::Literal(literal) => {
                for &b in literal.0.iter() {
                    if b.is_ascii_alphanumeric() {
                        run.push(char::from(b.to_ascii_lowercase()));
                    } else if !run.is_empty() {
                        runs.push(std::mem::take(&mut run));
                    }
                }
            }
            _ => match one_char(part) {
                Some(c) => run.push(c),
                None => {
                    if !run.is_empty() {
                        runs.push(std::mem::take(&mut run));
                    }
                    // A class of other characters requires no letter; look-arounds and
                    // empty parts match no character.
                    if !matches!(
                        part.kind(),
                        HirKind::Class(_) | HirKind::Look(_) | HirKind::Empty
                    ) {
                        runs.extend(required(part));
                    }
                }
            },
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// The one ASCII letter or digit a class matches, lower case, when it matches that character
/// (in either ASCII case for a letter) and nothing else.
fn one_char(hir: &Hir) -> Option<char> {
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => single(
            class
                .ranges()
                .iter()
                .map(|r| (u32::from(r.start()), u32::from(r.end()))),
        ),
        HirKind::Class(Class::Bytes(class)) => single(
            class
                .ranges()
                .iter()
                .map(|r| (u32::from(r.start()), u32::from(r.end()))),
        ),
        _ => None,
    }
}

/// A class's ranges as one ASCII letter or digit: `[x]`, or `[Xx]` for a letter. A class of
/// more than two characters (in any of its ranges: `[0-9a]` is not `a`) is none.
fn single(ranges: impl Iterator<Item = (u32, u32)>) -> Option<char> {
    let mut chars = Vec::with_capacity(2);
    for (a, b) in ranges {
        if b - a >= 2 || chars.len() + (b - a) as usize + 1 > 2 {
            return None;
        }
        chars.extend((a..=b).filter_map(char::from_u32));
    }
    match chars.as_slice() {
        [c] if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
        [a, b] if a.is_ascii_alphabetic() && a.to_ascii_lowercase() == *b && a != b => Some(*b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_regexes_and_like_patterns() {
        let pack = r"(?i)Set-Smb(Client|Server)Configuration[^\n;|]*-EnableInsecureGuestLogons\s*:?\s*(\$true|1)\b";
        let runs = regex_runs(pack);
        for want in ["configuration", "enablein", "ecuregue", "tlogon"] {
            assert!(runs.iter().any(|r| r == want), "{want}: {runs:?}");
        }
        // `s` and `k` under (?i) also match the long s and the Kelvin sign: they end a run.
        assert!(
            runs.iter().all(|r| !r.contains('s') && !r.contains('k')),
            "{runs:?}"
        );
        // Case-sensitive letters are runs of their own; an alternation requires nothing.
        assert_eq!(regex_runs("ab(cd|ef)gh"), vec!["ab", "gh"]);
        assert_eq!(
            regex_runs("password=(x+)token"),
            vec!["password", "x", "token"]
        );
        assert!(regex_runs("alpha|beta").is_empty());
        assert!(regex_runs("(?i)(?:mimi)?katz").iter().all(|r| r != "mimi"));
        assert_eq!(regex_runs("(abc){2,}xyz"), vec!["abc", "xyz"]);
        // A class with a range beside one letter matches more than that letter.
        assert_eq!(regex_runs("x[0-9a]yz"), vec!["x", "yz"]);
        assert_eq!(regex_runs("ab[Cc]de[^f]gh"), vec!["abcde", "gh"]);
        assert!(regex_runs("[unclosed").is_empty());
        assert_eq!(like_runs("%Invoke-Mimikatz%"), vec!["invoke", "mimikatz"]);
        assert!(like_runs(r"%50\%%").is_empty());
    }

    #[test]
    fn checks_only_where_the_condition_implies_them() {
        let json = |name: &str| {
            Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
                std::sync::Arc::new(datafusion::logical_expr::ScalarUDF::new_from_impl(Named(
                    "json_as_text",
                ))),
                vec![col("data"), lit(name)],
            ))
        };
        let regexp =
            |e: Expr, p: &str| datafusion::functions::expr_fn::regexp_like(e, lit(p), None);
        let regex_op = |e: Expr, op: Operator, p: &str| {
            Expr::BinaryExpr(BinaryExpr::new(Box::new(e), op, Box::new(lit(p))))
        };
        // `data ILIKE '%run%'` for each run, in the order given, ANDed.
        let contains = |runs: &[&str]| {
            runs.iter()
                .map(|r| col("data").ilike(lit(format!("%{r}%"))))
                .reduce(Expr::and)
                .expect("at least one run")
        };
        let like = json("CommandLine").like(lit("%Invoke-Mimikatz%"));
        assert_eq!(
            implied_check(&like, "data"),
            Some(contains(&["mimikatz", "invoke"]))
        );
        let either = regexp(json("ScriptBlockText"), "(?i)AllowInsecureGuestAuth")
            .or(json("CommandLine").like(lit("%secretdump%")));
        // `~*` is matched without case: `S` stands for three characters there, `s` in `~`.
        let imatch = regex_op(
            json("CommandLine"),
            Operator::RegexIMatch,
            "Invoke-Mimikatz",
        );
        assert_eq!(
            implied_check(&imatch, "data"),
            Some(contains(&["invo", "mimi"]))
        );
        let matched = regex_op(json("CommandLine"), Operator::RegexMatch, "Invoke-Mimikatz");
        assert_eq!(
            implied_check(&matched, "data"),
            Some(contains(&["mimikatz", "invoke"]))
        );
        let check = implied_check(&either, "data").expect("both sides give a check");
        assert!(format!("{check}").contains(" OR "), "{check}");
        // Negation, a raw-column LIKE (a check already), one side without a run: none.
        assert_eq!(
            implied_check(&json("a").not_like(lit("%abcdef%")), "data"),
            None
        );
        assert_eq!(
            implied_check(&col("data").like(lit("%guest%")), "data"),
            None
        );
        let half = like.clone().or(json("a").eq(lit("x")));
        assert_eq!(implied_check(&half, "data"), None);
        // AND keeps the checks of whichever side has one.
        let and = like.and(json("a").eq(lit("x")));
        assert!(implied_check(&and, "data").is_some());
    }

    /// A stand-in UDF with a given name (the JSON functions live in the query crate's session).
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct Named(&'static str);

    impl datafusion::logical_expr::ScalarUDFImpl for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn signature(&self) -> &datafusion::logical_expr::Signature {
            static SIG: std::sync::OnceLock<datafusion::logical_expr::Signature> =
                std::sync::OnceLock::new();
            SIG.get_or_init(|| {
                datafusion::logical_expr::Signature::any(
                    2,
                    datafusion::logical_expr::Volatility::Immutable,
                )
            })
        }
        fn return_type(
            &self,
            _: &[arrow::datatypes::DataType],
        ) -> datafusion::error::Result<arrow::datatypes::DataType> {
            Ok(arrow::datatypes::DataType::Utf8)
        }
        fn invoke_with_args(
            &self,
            _: datafusion::logical_expr::ScalarFunctionArgs,
        ) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
            datafusion::common::not_impl_err!("stand-in")
        }
    }
}
