//! Splitting one name string into first and last name.

/// `(first, last)` of a name: "Last, First …" when there is a comma, else the last word is
/// the last name and the words before it the first name. A single word is a last name,
/// because registers that keep one word keep the surname. Whitespace runs collapse.
pub(super) fn split(name: &str) -> (Option<String>, Option<String>) {
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let nonempty = |s: String| (!s.is_empty()).then_some(s);
    if let Some((last, first)) = name.split_once(',') {
        return (nonempty(words(first)), nonempty(words(last)));
    }
    let parts: Vec<&str> = name.split_whitespace().collect();
    match parts.split_last() {
        None => (None, None),
        Some((last, [])) => (None, Some((*last).to_string())),
        Some((last, first)) => (Some(first.join(" ")), Some((*last).to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(first: Option<&str>, last: Option<&str>) -> (Option<String>, Option<String>) {
        (first.map(str::to_string), last.map(str::to_string))
    }

    #[test]
    fn splits_common_shapes() {
        assert_eq!(split("Doe, Jane"), s(Some("Jane"), Some("Doe")));
        assert_eq!(split("Jane Q. Doe"), s(Some("Jane Q."), Some("Doe")));
        assert_eq!(
            split("  DOE ,  JANE   Q. "),
            s(Some("JANE Q."), Some("DOE"))
        );
        assert_eq!(
            split("van der Berg, Anna"),
            s(Some("Anna"), Some("van der Berg"))
        );
        assert_eq!(split("Cher"), s(None, Some("Cher")));
        assert_eq!(split("Doe,"), s(None, Some("Doe")));
        assert_eq!(split(", Jane"), s(Some("Jane"), None));
        assert_eq!(split("   "), s(None, None));
        assert_eq!(split("Zoë Ångström"), s(Some("Zoë"), Some("Ångström")));
    }

    proptest! {
        #[test]
        fn first_and_last_rebuild_the_name(words in prop::collection::vec("[A-Za-z.'-]{1,8}", 2..5)) {
            let name = words.join(" ");
            let (first, last) = split(&name);
            prop_assert_eq!(format!("{} {}", first.unwrap_or_default(), last.unwrap_or_default()), name);
        }
    }
}
