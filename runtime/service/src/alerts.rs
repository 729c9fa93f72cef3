//! Alerts: a message sent through an alerter component (ZenML's `BaseAlerter.post`),
//! for `strata alerter post` and its REST route.

use std::collections::BTreeMap;

#[allow(unused_imports)]
use strata_api::views::*;

use super::Service;
use crate::error::{Error, Result};
use crate::model::ComponentType;

/// The longest message strata hands an alerter, in characters (Slack cuts a message
/// there).
pub const MAX_MESSAGE_CHARS: usize = 40_000;
/// The most `key=value` parameters a post may carry.
pub const MAX_PARAMS: usize = 32;

impl Service {
    /// Sends `message` through the alerter `name`, with `params` (`title`, `level`, …:
    /// the WIT's `alerter.post`). The flavor's answer says where the message went.
    pub fn alerter_post(
        &self,
        name: &str,
        message: &str,
        params: BTreeMap<String, String>,
    ) -> Result<PostReport> {
        if message.trim().is_empty() {
            return Err(Error::invalid(
                "the message is empty",
                "give the text to send: `strata alerter post NAME \"the text\"`",
            ));
        }
        let chars = message.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            return Err(Error::invalid(
                format!(
                    "the message is {chars} characters long, more than the {MAX_MESSAGE_CHARS} an alert may carry"
                ),
                "send a shorter message, with a link to the rest (`--param url=…`)",
            ));
        }
        if params.len() > MAX_PARAMS {
            return Err(Error::invalid(
                format!("{} parameters given, more than {MAX_PARAMS}", params.len()),
                "keep the parameters that shape the message: title, level, pipeline, run-id, step, stack, url",
            ));
        }
        for (key, value) in &params {
            crate::model::text::check_name_chars("a parameter name", key)?;
            if key.is_empty() || value.chars().count() > MAX_MESSAGE_CHARS {
                return Err(Error::invalid(
                    format!("parameter `{key}` is empty or too long"),
                    "give parameters as `--param KEY=VALUE`",
                ));
            }
        }
        let t = ComponentType::Alerter;
        self.as_call(t, name, "post", |c| {
        let b = self.bind(c, false)?;
        let subject = format!("{} `{}` (flavor `{}`)", t.label(), c.name, b.f.info.name);
        if !b.loaded.exports_alerter() {
            return Err(Error::invalid(
                format!(
                    "{subject} cannot post: its flavor does not export the `alerter` interface"
                ),
                "rebuild the flavor for the `alerter-flavor` world of strata:flavor@0.2.0 (`strata flavor new --type alerter` makes one), or install the `webhook` integration: `strata integration install webhook`",
            ));
        }
        let params: Vec<(String, String)> = params.into_iter().collect();
        let called = b.target(self.sandbox()?).post(&b.ctx, message, &params)?;
        let elapsed_ms = called.elapsed.as_millis() as u64;
        // A failed post changes nothing of the component's: its phase and last error
        // belong to the lifecycle.
        let detail = self.flavor_value(&subject, "post", called)?;
        Ok(PostReport {
            alerter: c.name.clone(),
            flavor: b.f.info.name.clone(),
            detail,
            elapsed_ms,
        })
        })
    }
}
