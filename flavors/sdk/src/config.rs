//! Reading a component's configuration.

/// A read-only view of a component's configuration, as strata hands it to a flavor: one
/// `(name, value)` pair per field, defaults already filled in, path values absolute.
///
/// Every getter that can fail returns a message naming the field, ready to be shown to
/// the user.
#[derive(Debug, Clone, Copy)]
pub struct Config<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Config<'a> {
    /// Wraps the configuration pairs of a call (`context.config`, or the argument of
    /// `validate`).
    pub fn new(pairs: &'a [(String, String)]) -> Self {
        Config { pairs }
    }

    /// The value of the field `name`, or `None` if it was not given. If a field appears
    /// more than once, the first value counts.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the field `name` was given (even with an empty value).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The value of the field `name`, which must be given and not blank.
    ///
    /// # Errors
    /// A message naming the field if it is missing or blank.
    pub fn require(&self, name: &str) -> Result<&'a str, String> {
        match self.get(name) {
            None => Err(format!(
                "configuration field `{name}` is missing: set it with `--{name}=VALUE`"
            )),
            Some(value) if value.trim().is_empty() => Err(format!(
                "configuration field `{name}` is empty: give it a value with `--{name}=VALUE`"
            )),
            Some(value) => Ok(value),
        }
    }

    /// The field `name` read as a boolean (`true` or `false`, any letter case), or `None`
    /// if it was not given.
    ///
    /// # Errors
    /// A message naming the field and the value if it is neither `true` nor `false`.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, String> {
        self.get(name)
            .map(|value| parse_bool(name, value))
            .transpose()
    }

    /// The field `name` read as a boolean, or `default` if it was not given.
    ///
    /// # Errors
    /// As [`Config::bool`].
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, String> {
        Ok(self.bool(name)?.unwrap_or(default))
    }

    /// The field `name` read as a boolean; it must be given.
    ///
    /// # Errors
    /// As [`Config::require`] and [`Config::bool`].
    pub fn require_bool(&self, name: &str) -> Result<bool, String> {
        parse_bool(name, self.require(name)?)
    }

    /// The field `name` read as a signed 64-bit decimal integer, or `None` if it was not
    /// given. Surrounding spaces are ignored.
    ///
    /// # Errors
    /// A message naming the field and the value if it is not a whole number in range.
    pub fn int(&self, name: &str) -> Result<Option<i64>, String> {
        self.get(name)
            .map(|value| parse_int(name, value))
            .transpose()
    }

    /// The field `name` read as an integer, or `default` if it was not given.
    ///
    /// # Errors
    /// As [`Config::int`].
    pub fn int_or(&self, name: &str, default: i64) -> Result<i64, String> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    /// The field `name` read as an integer; it must be given.
    ///
    /// # Errors
    /// As [`Config::require`] and [`Config::int`].
    pub fn require_int(&self, name: &str) -> Result<i64, String> {
        parse_int(name, self.require(name)?)
    }

    /// Every `(name, value)` pair, in the order strata gave them.
    pub fn pairs(&self) -> &'a [(String, String)] {
        self.pairs
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, String> {
    let trimmed = value.trim();
    if trimmed.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if trimmed.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(format!(
            "configuration field `{name}` must be `true` or `false`, not `{value}`"
        ))
    }
}

fn parse_int(name: &str, value: &str) -> Result<i64, String> {
    let trimmed = value.trim();
    trimmed.parse::<i64>().map_err(|err| {
        use std::num::IntErrorKind;
        match err.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => format!(
                "configuration field `{name}` is out of range: `{value}` does not fit in a \
                 signed 64-bit integer"
            ),
            IntErrorKind::Empty => {
                format!("configuration field `{name}` is empty: give it a whole number")
            }
            _ => format!(
                "configuration field `{name}` must be a whole number in decimal (like `42`), \
                 not `{value}`"
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn get_finds_first_value_and_none_when_missing() {
        let p = pairs(&[("a", "1"), ("b", "2"), ("a", "3")]);
        let config = Config::new(&p);
        assert_eq!(config.get("a"), Some("1"));
        assert_eq!(config.get("b"), Some("2"));
        assert_eq!(config.get("c"), None);
        assert!(config.contains("b"));
        assert!(!config.contains("c"));
        assert_eq!(config.pairs().len(), 3);
    }

    #[test]
    fn require_names_the_field() {
        let p = pairs(&[("blank", "  "), ("ok", "x")]);
        let config = Config::new(&p);
        assert_eq!(config.require("ok"), Ok("x"));
        let missing = config.require("path").unwrap_err();
        assert!(
            missing.contains("`path`") && missing.contains("missing"),
            "{missing}"
        );
        assert!(missing.contains("--path=VALUE"), "{missing}");
        let blank = config.require("blank").unwrap_err();
        assert!(
            blank.contains("`blank`") && blank.contains("empty"),
            "{blank}"
        );
    }

    #[test]
    fn booleans() {
        let p = pairs(&[("t", "true"), ("f", " FALSE "), ("bad", "yes")]);
        let config = Config::new(&p);
        assert_eq!(config.bool("t"), Ok(Some(true)));
        assert_eq!(config.bool("f"), Ok(Some(false)));
        assert_eq!(config.bool("none"), Ok(None));
        assert_eq!(config.bool_or("none", true), Ok(true));
        assert_eq!(config.require_bool("t"), Ok(true));
        let err = config.bool("bad").unwrap_err();
        assert!(err.contains("`bad`") && err.contains("`yes`"), "{err}");
        assert!(config.require_bool("none").unwrap_err().contains("missing"));
    }

    #[test]
    fn integers() {
        let p = pairs(&[
            ("n", "42"),
            ("neg", " -7 "),
            ("word", "three"),
            ("big", "99999999999999999999"),
            ("frac", "1.5"),
        ]);
        let config = Config::new(&p);
        assert_eq!(config.int("n"), Ok(Some(42)));
        assert_eq!(config.int("neg"), Ok(Some(-7)));
        assert_eq!(config.int("none"), Ok(None));
        assert_eq!(config.int_or("none", 3), Ok(3));
        assert_eq!(config.require_int("n"), Ok(42));
        let word = config.int("word").unwrap_err();
        assert!(
            word.contains("`word`") && word.contains("whole number"),
            "{word}"
        );
        let big = config.int("big").unwrap_err();
        assert!(
            big.contains("`big`") && big.contains("out of range"),
            "{big}"
        );
        assert!(config.int("frac").unwrap_err().contains("`1.5`"));
        assert!(config.require_int("none").unwrap_err().contains("missing"));
    }
}
