//! Reading a component's configuration.

use std::path::PathBuf;

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

    /// The field `name` read as a decimal number, or `None` if it was not given.
    /// Surrounding spaces are ignored.
    ///
    /// # Errors
    /// A message naming the field and the value if it is not a finite number.
    pub fn float(&self, name: &str) -> Result<Option<f64>, String> {
        self.get(name)
            .map(|value| parse_float(name, value))
            .transpose()
    }

    /// The field `name` read as a decimal number, or `default` if it was not given.
    ///
    /// # Errors
    /// As [`Config::float`].
    pub fn float_or(&self, name: &str, default: f64) -> Result<f64, String> {
        Ok(self.float(name)?.unwrap_or(default))
    }

    /// The field `name` read as a decimal number; it must be given.
    ///
    /// # Errors
    /// As [`Config::require`] and [`Config::float`].
    pub fn require_float(&self, name: &str) -> Result<f64, String> {
        parse_float(name, self.require(name)?)
    }

    /// The field `name`, which must be one of `choices` (exactly, letter case included);
    /// returns its index in `choices`.
    ///
    /// # Errors
    /// As [`Config::require`], or a message naming the field, the value and the choices.
    pub fn require_one_of(&self, name: &str, choices: &[&str]) -> Result<usize, String> {
        let value = self.require(name)?;
        choices.iter().position(|c| *c == value).ok_or_else(|| {
            format!(
                "configuration field `{name}` must be one of {}, not `{value}`",
                choices.join(", ")
            )
        })
    }

    /// The field `name` read as a local directory, or `None` if it was not given. strata
    /// makes a local `path` field absolute before a flavor sees it, and grants the flavor
    /// that directory.
    ///
    /// # Errors
    /// A message naming the field if the value has a URL scheme (`s3://…`) or is not
    /// absolute.
    pub fn path(&self, name: &str) -> Result<Option<PathBuf>, String> {
        self.get(name)
            .map(|value| parse_local_path(name, value))
            .transpose()
    }

    /// The field `name` read as a local directory; it must be given.
    ///
    /// # Errors
    /// As [`Config::require`] and [`Config::path`].
    pub fn require_path(&self, name: &str) -> Result<PathBuf, String> {
        parse_local_path(name, self.require(name)?)
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

fn parse_float(name: &str, value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(number) if number.is_finite() => Ok(number),
        _ => Err(format!(
            "configuration field `{name}` must be a decimal number (like `0.5`), not `{value}`"
        )),
    }
}

fn parse_local_path(name: &str, value: &str) -> Result<PathBuf, String> {
    if let Some((scheme, _)) = value.split_once("://") {
        return Err(format!(
            "configuration field `{name}` must be a local directory, not a `{scheme}://` \
             location: give a path on this machine, like `--{name}=/data/{name}`"
        ));
    }
    let path = PathBuf::from(value);
    if !path.is_absolute() {
        return Err(format!(
            "configuration field `{name}` is not an absolute path (`{value}`): strata makes \
             local paths absolute when a component is registered, so register it again \
             with `--{name}=/absolute/path`"
        ));
    }
    Ok(path)
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

    #[test]
    fn floats() {
        let p = pairs(&[("f", " 0.25 "), ("n", "3"), ("bad", "half"), ("inf", "inf")]);
        let config = Config::new(&p);
        assert_eq!(config.float("f"), Ok(Some(0.25)));
        assert_eq!(config.float("n"), Ok(Some(3.0)));
        assert_eq!(config.float("none"), Ok(None));
        assert_eq!(config.float_or("none", 1.5), Ok(1.5));
        assert_eq!(config.require_float("f"), Ok(0.25));
        let bad = config.float("bad").unwrap_err();
        assert!(bad.contains("`bad`") && bad.contains("`half`"), "{bad}");
        assert!(config.float("inf").is_err());
        assert!(
            config
                .require_float("none")
                .unwrap_err()
                .contains("missing")
        );
    }

    #[test]
    fn local_paths() {
        let p = pairs(&[("dir", "/data/a"), ("s3", "s3://bucket/x"), ("rel", "data")]);
        let config = Config::new(&p);
        assert_eq!(config.path("dir"), Ok(Some(PathBuf::from("/data/a"))));
        assert_eq!(config.path("none"), Ok(None));
        assert_eq!(config.require_path("dir"), Ok(PathBuf::from("/data/a")));
        let remote = config.path("s3").unwrap_err();
        assert!(
            remote.contains("`s3://`") && remote.contains("`s3`"),
            "{remote}"
        );
        let relative = config.require_path("rel").unwrap_err();
        assert!(relative.contains("not an absolute path"), "{relative}");
        assert!(config.require_path("none").unwrap_err().contains("missing"));
    }

    #[test]
    fn choices() {
        let p = pairs(&[("level", "warning"), ("loud", "LOUD")]);
        let config = Config::new(&p);
        let levels = ["info", "warning", "error"];
        assert_eq!(config.require_one_of("level", &levels), Ok(1));
        let err = config.require_one_of("loud", &levels).unwrap_err();
        assert_eq!(
            err,
            "configuration field `loud` must be one of info, warning, error, not `LOUD`"
        );
        assert!(
            config
                .require_one_of("none", &levels)
                .unwrap_err()
                .contains("missing")
        );
    }
}
