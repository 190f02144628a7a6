//! Property test: mutated fixtures never panic and never leak a secret.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::parse;
use super::tests::{FIXTURES, bom_crlf, path};

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    /// Replace the n-th leaf (or container) with a value of another type.
    WrongType(usize, usize),
    /// Replace the n-th value with a ~256 KiB string.
    HugeString(usize),
    /// Insert 10,000 `[` at an offset.
    DeepNesting(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => any::<usize>().prop_map(Mutation::Truncate),
        4 => (any::<usize>(), 1..=255u8).prop_map(|(i, m)| Mutation::Flip(i, m)),
        3 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        4 => (any::<usize>(), any::<usize>()).prop_map(|(i, k)| Mutation::WrongType(i, k)),
        1 => any::<usize>().prop_map(Mutation::HugeString),
        1 => any::<usize>().prop_map(Mutation::DeepNesting),
    ]
}

fn pointers(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{prefix}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(v, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{prefix}/{i}");
                out.push(p.clone());
                pointers(v, &p, out);
            }
        }
        _ => {}
    }
}

/// Replaces the `index`-th value (mod count) when `bytes` is JSON.
fn replace_value(bytes: &mut Vec<u8>, index: usize, with: Value) {
    let Ok(mut doc) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    let mut all = Vec::new();
    pointers(&doc, "", &mut all);
    if all.is_empty() {
        return;
    }
    if let Some(slot) = doc.pointer_mut(&all[index % all.len()]) {
        *slot = with;
    }
    *bytes = serde_json::to_vec_pretty(&doc).unwrap();
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
    match m {
        Mutation::Truncate(i) => bytes.truncate(at(*i, bytes.len())),
        Mutation::Flip(i, mask) => {
            if !bytes.is_empty() {
                let i = i % bytes.len();
                bytes[i] ^= mask;
            }
        }
        Mutation::Insert(i, b) => {
            let i = at(*i, bytes.len());
            bytes.splice(i..i, b.iter().copied());
        }
        Mutation::WrongType(i, k) => {
            let wrong = [
                json!(42),
                json!(true),
                Value::Null,
                json!([]),
                json!({}),
                json!("not a token"),
                json!(-1.5e300),
                json!([1, "x"]),
                json!(""),
                json!(1e20),
            ];
            replace_value(bytes, *i, wrong[k % wrong.len()].clone());
        }
        Mutation::HugeString(i) => {
            replace_value(bytes, *i, Value::String("h".repeat(256 * 1024)));
        }
        Mutation::DeepNesting(i) => {
            let i = at(*i, bytes.len());
            bytes.splice(i..i, std::iter::repeat_n(b'[', 10_000));
        }
    }
}

/// Every secret of every fixture: the tokens containing `FIXTURE`, and the
/// JWTs (which do not).
fn fixture_secrets() -> Vec<String> {
    let mut out = Vec::new();
    for (_, bytes) in FIXTURES {
        let doc: Value = serde_json::from_slice(bytes).unwrap();
        let mut all = Vec::new();
        pointers(&doc, "", &mut all);
        let strings = all
            .iter()
            .filter_map(|p| doc.pointer(p).and_then(Value::as_str));
        out.extend(
            strings
                .filter(|s| s.contains("FIXTURE") || s.starts_with("eyJ"))
                .map(str::to_owned),
        );
    }
    assert!(out.len() >= 20, "{} secrets", out.len());
    out
}

fn assert_no_secret(text: &str, secrets: &[String]) {
    assert!(!text.contains("FIXTURE"), "secret in {text:?}");
    for s in secrets {
        assert!(!text.contains(s.as_str()), "secret in {text:?}");
    }
}

/// Runs the proptest runner directly (rather than `proptest!`) so the test
/// can assert that all 10,000 inputs ran and that both outcomes occurred.
#[test]
fn mutated_fixtures_never_panic_or_leak() {
    let config = ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let input = (
        0..FIXTURES.len(),
        any::<bool>(),
        proptest::collection::vec(mutation(), 1..=3),
    );
    let secrets = fixture_secrets();
    let (ok, err) = (std::cell::Cell::new(0usize), std::cell::Cell::new(0usize));
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&input, |(fixture, crlf, mutations)| {
        let mut bytes = FIXTURES[fixture].1.to_vec();
        if crlf {
            bytes = bom_crlf(&bytes);
        }
        for m in &mutations {
            apply(&mut bytes, m);
        }
        match parse(path(), &bytes) {
            Ok(source) => {
                ok.set(ok.get() + 1);
                for note in &source.notes {
                    assert_no_secret(note, &secrets);
                }
                for account in &source.accounts {
                    prop_assert!(matches!(account.credentials.len(), 1 | 2));
                    prop_assert!(
                        account
                            .credentials
                            .iter()
                            .any(|c| c.kind() == account.active)
                    );
                }
            }
            Err(e) => {
                err.set(err.get() + 1);
                assert_no_secret(&e.to_string(), &secrets);
                prop_assert!(e.line >= 1 && e.column >= 1);
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (ok, err) = (ok.get(), err.get());
    assert!(ok + err >= 10_000, "only {} inputs ran", ok + err);
    assert!(
        ok > 1_000 && err > 1_000,
        "{ok} imported, {err} rejected: the mutations are unbalanced"
    );
}
