//! Collecting every problem `validate` finds, not just the first.

/// One problem with a configuration: the field at fault (if it is about one field) and a
/// message for the user. A flavor maps it to its generated `field-error` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field at fault, or `None` if the problem concerns the configuration as a whole.
    pub field: Option<String>,
    /// What is wrong and what to do about it.
    pub message: String,
}

/// The problems found so far while validating a configuration.
///
/// ```
/// use strata_flavor_sdk::Problems;
///
/// let mut problems = Problems::new();
/// problems.field("threshold", "threshold must be between 1 and 100, not 0");
/// let found = problems.into_result().unwrap_err();
/// assert_eq!(found[0].field.as_deref(), Some("threshold"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    items: Vec<Problem>,
}

impl Problems {
    /// No problems yet.
    pub fn new() -> Self {
        Problems::default()
    }

    /// Records a problem with the field `name`.
    pub fn field(&mut self, name: &str, message: impl Into<String>) {
        self.items.push(Problem {
            field: Some(name.to_string()),
            message: message.into(),
        });
    }

    /// Records a problem with the configuration as a whole.
    pub fn general(&mut self, message: impl Into<String>) {
        self.items.push(Problem {
            field: None,
            message: message.into(),
        });
    }

    /// Records the error of `result` against the field `name`, if it is one, and returns
    /// the value if there is one.
    pub fn check<T>(&mut self, name: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.field(name, message);
                None
            }
        }
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// `Ok(())` if nothing was found, otherwise every problem in the order found.
    ///
    /// # Errors
    /// The problems found, if any.
    pub fn into_result(self) -> Result<(), Vec<Problem>> {
        if self.items.is_empty() {
            Ok(())
        } else {
            Err(self.items)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_ok() {
        let problems = Problems::new();
        assert!(problems.is_empty());
        assert_eq!(problems.into_result(), Ok(()));
    }

    #[test]
    fn keeps_every_problem_in_order() {
        let mut problems = Problems::new();
        problems.field("a", "first");
        problems.general("second");
        assert_eq!(problems.check("b", Ok::<_, String>(5)), Some(5));
        assert_eq!(problems.check::<i64>("c", Err("third".into())), None);
        let found = problems.into_result().unwrap_err();
        let fields: Vec<_> = found.iter().map(|p| p.field.as_deref()).collect();
        assert_eq!(fields, [Some("a"), None, Some("c")]);
        assert_eq!(found[2].message, "third");
    }
}
