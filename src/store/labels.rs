//! Free labels for accounts the user did not name: `base`, else `base-2`,
//! `base-3`… The one allocator behind `vault login` without `--label` and
//! the accounts an import creates.

use super::check_label;
use crate::error::{Error, Result};

/// The longest label, in bytes: the limit [`check_label`] enforces (the
/// table test below fails if the two disagree).
const MAX_LEN: usize = 64;

/// The highest number tried after `base`.
pub(crate) const LAST_NUMBER: u32 = 9_999;

/// The first of `base`, `base-2` … `base-9999` that `taken` reports free.
/// `base` is cut short where needed so that the number fits in 64 bytes.
///
/// # Errors
/// [`Error::NoFreeLabel`] when every candidate is taken; `InvalidLabel` when
/// the free candidate is not a valid label; whatever `taken` returns.
pub(crate) fn free_label(
    base: &str,
    mut taken: impl FnMut(&str) -> Result<bool>,
) -> Result<String> {
    for n in 1..=LAST_NUMBER {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        let label = format!("{}{suffix}", cut(base, MAX_LEN - suffix.len()));
        if !taken(&label)? {
            check_label(&label)?;
            return Ok(label);
        }
    }
    Err(Error::NoFreeLabel {
        base: base.to_owned(),
        last: LAST_NUMBER,
    })
}

/// `s`, at most `max` bytes long, cut at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocate(base: &str, taken: &[&str]) -> Result<String> {
        free_label(base, |l| Ok(taken.contains(&l)))
    }

    #[test]
    fn the_first_free_of_base_and_its_numbered_forms_is_chosen() {
        let long = "a".repeat(63);
        let full = "b".repeat(64);
        let cases: [(&str, &[&str], String); 6] = [
            ("openai-api-key", &[], "openai-api-key".into()),
            (
                "openai-api-key",
                &["openai-api-key"],
                "openai-api-key-2".into(),
            ),
            (
                "claude-max",
                &["claude-max", "claude-max-2"],
                "claude-max-3".into(),
            ),
            // A free number in a gap is taken before the next one.
            ("x", &["x", "x-3"], "x-2".into()),
            // Cut short so the number fits in 64 bytes.
            (&long, &[&long], format!("{}-2", "a".repeat(62))),
            (&full, &[&full], format!("{}-2", "b".repeat(62))),
        ];
        for (base, taken, want) in cases {
            let got = allocate(base, taken).expect("a label");
            assert_eq!(got, want, "base {base:?}, taken {taken:?}");
            check_label(&got).expect("a valid label");
        }
    }

    #[test]
    fn a_long_base_is_cut_so_every_numbered_label_stays_valid() {
        let base = "c".repeat(64);
        let mut seen = Vec::new();
        let got = free_label(&base, |l| {
            seen.push(l.to_owned());
            Ok(seen.len() < 1000)
        })
        .expect("a label");
        assert_eq!(got, format!("{}-1000", "c".repeat(59)));
        for label in &seen {
            check_label(label).expect("a valid label");
        }
    }

    #[test]
    fn when_every_number_is_taken_the_error_says_what_to_do() {
        let err = free_label("openai-api-key", |_| Ok(true)).expect_err("exhausted");
        assert!(
            matches!(&err, Error::NoFreeLabel { base, last: LAST_NUMBER } if base == "openai-api-key"),
            "{err:?}"
        );
        assert!(err.to_string().contains("--label"), "{err}");
    }

    #[test]
    fn an_invalid_base_is_refused_not_returned() {
        let err = allocate("-starts-with-a-dash", &[]).expect_err("invalid");
        assert!(matches!(err, Error::InvalidLabel { .. }), "{err:?}");
    }

    #[test]
    fn an_error_from_the_lookup_is_passed_on() {
        let err = free_label("x", |_| Err(Error::Login("lookup failed".into())))
            .expect_err("the lookup's error");
        assert!(matches!(err, Error::Login(_)), "{err:?}");
    }
}
