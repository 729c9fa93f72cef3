//! A flavor's state, kept by strata between calls, encoded as JSON.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes and decodes a flavor's state of type `T` as JSON bytes.
///
/// Each call of a flavor runs in a fresh instance, so the state it returns
/// (`some(bytes)` in a `state-result`) is its only memory; strata hands the bytes back in
/// `context.state`. JSON keeps those bytes readable for a person inspecting strata's
/// store, and lets a newer flavor read an older state when its fields have
/// `#[serde(default)]`.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use strata_flavor_sdk::State;
///
/// #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
/// struct Mine { running: bool }
///
/// let bytes = State::encode(&Mine { running: true }).unwrap();
/// assert_eq!(State::<Mine>::decode(Some(&bytes)).unwrap(), Mine { running: true });
/// assert_eq!(State::<Mine>::decode(None).unwrap(), Mine::default());
/// ```
pub struct State<T>(PhantomData<T>);

impl<T> State<T>
where
    T: Serialize + DeserializeOwned + Default,
{
    /// Reads the state strata handed back (`context.state`). No state at all (`None`,
    /// the component never returned any) or empty bytes give `T::default()`.
    ///
    /// # Errors
    /// A message saying the state is unreadable, why, and what to do, if the bytes are
    /// not JSON of the shape `T`.
    pub fn decode(bytes: Option<&[u8]>) -> Result<T, String> {
        match bytes {
            None => Ok(T::default()),
            Some(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(T::default()),
            Some(bytes) => serde_json::from_slice(bytes).map_err(|err| {
                format!(
                    "the state strata keeps for this component is unreadable ({err}): it was \
                     written by another version of this flavor, or damaged. Check that the \
                     flavor registered for this component is the one that provisioned it; \
                     if the state cannot be recovered, remove the component and register it \
                     again, then run `up` to provision it afresh"
                )
            }),
        }
    }

    /// Encodes `value` as the bytes to return in a `state-result`.
    ///
    /// # Errors
    /// A message if `value` cannot be written as JSON (a map whose keys are not strings,
    /// a failing custom `Serialize`): a bug in the flavor.
    pub fn encode(value: &T) -> Result<Vec<u8>, String> {
        serde_json::to_vec(value).map_err(|err| {
            format!(
                "could not encode this component's state as JSON ({err}): this is a bug in \
                 the flavor, please report it to its authors"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Sample {
        provisioned: bool,
        #[serde(default)]
        created: Vec<String>,
    }

    #[test]
    fn round_trip() {
        let value = Sample {
            provisioned: true,
            created: vec!["artifacts".into()],
        };
        let bytes = State::encode(&value).unwrap();
        assert_eq!(State::<Sample>::decode(Some(&bytes)).unwrap(), value);
        assert!(
            std::str::from_utf8(&bytes)
                .unwrap()
                .contains("\"provisioned\":true")
        );
    }

    #[test]
    fn missing_or_empty_state_is_default() {
        assert_eq!(State::<Sample>::decode(None).unwrap(), Sample::default());
        assert_eq!(
            State::<Sample>::decode(Some(b"")).unwrap(),
            Sample::default()
        );
        assert_eq!(
            State::<Sample>::decode(Some(b" \n")).unwrap(),
            Sample::default()
        );
    }

    #[test]
    fn older_state_with_fewer_fields_still_reads() {
        let decoded = State::<Sample>::decode(Some(br#"{"provisioned":true}"#)).unwrap();
        assert!(decoded.provisioned);
        assert!(decoded.created.is_empty());
    }

    #[test]
    fn garbage_is_reported_with_advice() {
        let err = State::<Sample>::decode(Some(b"\x00\x01not json")).unwrap_err();
        assert!(err.contains("unreadable"), "{err}");
        assert!(err.contains("register it again"), "{err}");
        let wrong_shape = State::<Sample>::decode(Some(br#"{"provisioned":"yes"}"#)).unwrap_err();
        assert!(wrong_shape.contains("unreadable"), "{wrong_shape}");
    }
}
