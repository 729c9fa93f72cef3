//! Service connectors (seed 002): credentials for a service, kept by strata and added by
//! the sandbox's network gate to each request a component's flavor makes to the
//! connector's endpoint. A flavor is told the endpoint and the non-secret settings
//! (`connector.*` in its context), never the credential.
//!
//! Types: `aws` (SigV4: access key id, secret access key, optional session token,
//! region, service), `bearer` (a token), `basic` (user name and password). The
//! credentials are sealed as secrets are (ChaCha20-Poly1305, this home's `secret.key`),
//! masked in every view, and never exported.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_api::views::{ConnectorCheck, ConnectorView, NetGrantView};

use super::components::check_name;
use super::secrets::normalized_keys;
use super::{Service, new_id};
use crate::error::{Error, Result};
use crate::model::origin::Origin;
use crate::model::{ComponentRecord, now_ms};
use crate::sandbox::net::{Credential, Granted, sigv4};
use crate::store::{Batch, TreeId};

/// A connector as stored: its settings in clear, its credentials sealed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnectorRecord {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub endpoint: String,
    /// Non-secret settings: region, service, user name.
    pub settings: BTreeMap<String, String>,
    /// The names of the sealed credentials.
    pub secret_keys: Vec<String>,
    pub created_at: u64,
    pub updated_at: u64,
    nonce: String,
    sealed: String,
}

/// One field of a connector type.
pub struct ConnectorField {
    pub name: &'static str,
    pub secret: bool,
    pub required: bool,
    pub default: Option<&'static str>,
    pub description: &'static str,
}

const fn field(
    name: &'static str,
    secret: bool,
    required: bool,
    default: Option<&'static str>,
    description: &'static str,
) -> ConnectorField {
    ConnectorField {
        name,
        secret,
        required,
        default,
        description,
    }
}

const ENDPOINT: ConnectorField = field(
    "endpoint",
    false,
    true,
    None,
    "The service's URL (`https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`): its origin is granted to the components bound to the connector.",
);

const AWS: [ConnectorField; 6] = [
    ENDPOINT,
    field(
        "access_key_id",
        false,
        true,
        None,
        "The AWS access key id (AKIA…).",
    ),
    field(
        "secret_access_key",
        true,
        true,
        None,
        "The secret access key: stored encrypted, used only by strata to sign requests.",
    ),
    field(
        "session_token",
        true,
        false,
        None,
        "A session token, for temporary credentials.",
    ),
    field(
        "region",
        false,
        false,
        Some("us-east-1"),
        "The region requests are signed for.",
    ),
    field(
        "service",
        false,
        false,
        Some("s3"),
        "The AWS service requests are signed for.",
    ),
];
const BEARER: [ConnectorField; 2] = [
    ENDPOINT,
    field(
        "token",
        true,
        true,
        None,
        "The token sent as `Authorization: Bearer TOKEN`.",
    ),
];
const BASIC: [ConnectorField; 3] = [
    ENDPOINT,
    field(
        "username",
        false,
        true,
        None,
        "The user name of HTTP basic authentication.",
    ),
    field(
        "password",
        true,
        true,
        None,
        "The password of HTTP basic authentication.",
    ),
];

/// The connector types, with their fields.
pub const CONNECTOR_TYPES: [(&str, &str); 3] = [
    ("aws", "AWS SigV4 signing (S3 and S3-compatible stores)"),
    ("bearer", "an `Authorization: Bearer` token"),
    (
        "basic",
        "HTTP basic authentication (user name and password)",
    ),
];

/// The fields of connector type `kind`.
pub fn connector_fields(kind: &str) -> Result<&'static [ConnectorField]> {
    Ok(match kind {
        "aws" => &AWS,
        "bearer" => &BEARER,
        "basic" => &BASIC,
        other => {
            return Err(Error::invalid(
                format!("connector type `{other}` does not exist"),
                format!(
                    "use one of: {}",
                    CONNECTOR_TYPES
                        .iter()
                        .map(|(t, what)| format!("`{t}` ({what})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    })
}

impl Service {
    fn connector_or_err(&self, name: &str) -> Result<ConnectorRecord> {
        self.store.get(TreeId::Connectors, name)?.ok_or_else(|| {
            Error::not_found(
                format!("service connector `{name}`"),
                "see them with `strata service-connector list`, or register one with `strata service-connector register NAME --type aws|bearer|basic --endpoint=URL …`",
            )
        })
    }

    /// The connector with id `id`.
    pub(super) fn connector_by_id(&self, id: &str) -> Result<ConnectorRecord> {
        self.store
            .scan::<ConnectorRecord>(TreeId::Connectors, "")?
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| r.id == id)
            .ok_or_else(|| Error::Corrupt {
                key: format!("connectors/{id}"),
                reason: "a component is bound to a service connector that is not stored".into(),
            })
    }

    /// The id of connector `name`, for a component's `--connector=NAME`.
    pub(super) fn connector_id(&self, name: &str) -> Result<String> {
        Ok(self.connector_or_err(name)?.id)
    }

    /// Splits `values` into settings and credentials, checked against `kind`'s fields.
    fn split_values(
        name: &str,
        kind: &str,
        values: BTreeMap<String, String>,
        fill_defaults: bool,
    ) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
        let fields = connector_fields(kind)?;
        let mut settings = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for (k, v) in normalized_keys(values)? {
            let Some(f) = fields.iter().find(|f| f.name == k) else {
                return Err(Error::invalid(
                    format!("a `{kind}` connector has no field `{k}`"),
                    format!(
                        "its fields are: {}",
                        fields
                            .iter()
                            .map(|f| format!("--{}", f.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            if let Some(c) = crate::model::text::first_control(&v) {
                return Err(Error::invalid(
                    format!("the value of `--{k}` contains the control character {c}"),
                    "give it as printable text (a pasted credential may carry a line break)",
                ));
            }
            if f.name == "endpoint" && !v.is_empty() {
                Origin::of_url(&v).map_err(|e| {
                    Error::invalid(
                        format!("the endpoint of service connector `{name}` is not usable: {e}"),
                        "give an `http://` or `https://` URL, e.g. --endpoint=http://127.0.0.1:9000",
                    )
                })?;
            }
            if f.secret {
                secrets.insert(k, v);
            } else {
                settings.insert(k, v);
            }
        }
        if fill_defaults {
            for f in fields {
                if let Some(d) = f.default {
                    settings
                        .entry(f.name.to_string())
                        .or_insert_with(|| d.to_string());
                }
            }
        }
        Ok((settings, secrets))
    }

    fn check_complete(
        name: &str,
        kind: &str,
        settings: &BTreeMap<String, String>,
        secrets: &BTreeMap<String, String>,
    ) -> Result<()> {
        let missing: Vec<String> = connector_fields(kind)?
            .iter()
            .filter(|f| f.required)
            .filter(|f| {
                let have = if f.secret {
                    secrets.get(f.name)
                } else {
                    settings.get(f.name)
                };
                have.is_none_or(|v| v.is_empty())
            })
            .map(|f| format!("--{}", f.name))
            .collect();
        if !missing.is_empty() {
            return Err(Error::invalid(
                format!(
                    "service connector `{name}` (type `{kind}`) is missing {}",
                    missing.join(", ")
                ),
                format!(
                    "give {} (or register with `-i` to be asked)",
                    missing
                        .iter()
                        .map(|m| format!("{m}=VALUE"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            ));
        }
        Ok(())
    }

    /// Every connector as `connector_register` takes it: type, settings and credentials
    /// in clear. For `strata server import-home`, in-process only: no route answers it.
    pub fn connectors_with_credentials(
        &self,
    ) -> Result<Vec<(String, String, BTreeMap<String, String>)>> {
        let mut out = Vec::new();
        for (_, r) in self.store.scan::<ConnectorRecord>(TreeId::Connectors, "")? {
            let mut values = r.settings.clone();
            if !r.endpoint.is_empty() {
                values.insert("endpoint".into(), r.endpoint.clone());
            }
            values.extend(self.open_sealed(
                &format!("connectors/{}", r.name),
                &r.id,
                &r.nonce,
                &r.sealed,
            )?);
            out.push((r.name.clone(), r.kind.clone(), values));
        }
        Ok(out)
    }

    pub fn connector_register(
        &self,
        name: &str,
        kind: &str,
        values: BTreeMap<String, String>,
    ) -> Result<ConnectorView> {
        check_name("service connector", name)?;
        let (mut settings, secrets) = Self::split_values(name, kind, values, true)?;
        Self::check_complete(name, kind, &settings, &secrets)?;
        if self
            .store
            .get::<ConnectorRecord>(TreeId::Connectors, name)?
            .is_some()
        {
            return Err(Error::exists(
                format!("service connector `{name}`"),
                format!(
                    "change it with `strata service-connector update {name} --KEY=VALUE`, or pick another name"
                ),
            ));
        }
        let endpoint = settings.remove("endpoint").unwrap_or_default();
        let id = new_id();
        let (nonce, sealed) = self.seal(&id, &secrets)?;
        let now = now_ms();
        let r = ConnectorRecord {
            id,
            name: name.to_string(),
            kind: kind.to_string(),
            endpoint,
            settings,
            secret_keys: secrets.keys().cloned().collect(),
            created_at: now,
            updated_at: now,
            nonce,
            sealed,
        };
        let mut batch = Batch::new();
        batch.put(TreeId::Connectors, name, &r);
        self.store.apply(batch)?;
        self.connector_view(&r)
    }

    pub fn connector_list(&self) -> Result<Vec<ConnectorView>> {
        self.store
            .scan::<ConnectorRecord>(TreeId::Connectors, "")?
            .into_iter()
            .map(|(_, r)| self.connector_view(&r))
            .collect()
    }

    pub fn connector_describe(&self, name: &str) -> Result<ConnectorView> {
        let r = self.connector_or_err(name)?;
        self.connector_view(&r)
    }

    /// Merges `values` into the connector; an empty value removes an optional field.
    pub fn connector_update(
        &self,
        name: &str,
        values: BTreeMap<String, String>,
    ) -> Result<ConnectorView> {
        let mut r = self.connector_or_err(name)?;
        let (settings, secrets) = Self::split_values(name, &r.kind, values, false)?;
        let mut all_settings = r.settings.clone();
        all_settings.insert("endpoint".into(), r.endpoint.clone());
        let mut all_secrets =
            self.open_sealed(&format!("connectors/{name}"), &r.id, &r.nonce, &r.sealed)?;
        for (k, v) in settings {
            if v.is_empty() {
                all_settings.remove(&k)
            } else {
                all_settings.insert(k, v)
            };
        }
        for (k, v) in secrets {
            if v.is_empty() {
                all_secrets.remove(&k)
            } else {
                all_secrets.insert(k, v)
            };
        }
        Self::check_complete(name, &r.kind, &all_settings, &all_secrets)?;
        r.endpoint = all_settings.remove("endpoint").unwrap_or_default();
        r.settings = all_settings;
        let (nonce, sealed) = self.seal(&r.id, &all_secrets)?;
        r.nonce = nonce;
        r.sealed = sealed;
        r.secret_keys = all_secrets.keys().cloned().collect();
        r.updated_at = now_ms();
        let mut batch = Batch::new();
        batch.put(TreeId::Connectors, name, &r);
        self.store.apply(batch)?;
        self.connector_view(&r)
    }

    /// Components keep the connector's id, so a rename changes nothing else.
    pub fn connector_rename(&self, old: &str, new: &str) -> Result<ConnectorView> {
        let mut r = self.connector_or_err(old)?;
        check_name("service connector", new)?;
        if self
            .store
            .get::<ConnectorRecord>(TreeId::Connectors, new)?
            .is_some()
        {
            return Err(Error::exists(
                format!("service connector `{new}`"),
                "pick another name",
            ));
        }
        r.name = new.to_string();
        r.updated_at = now_ms();
        let mut batch = Batch::new();
        batch
            .remove(TreeId::Connectors, old)
            .put(TreeId::Connectors, new, &r);
        self.move_grants(&mut batch, "connector", old, Some(new))?;
        self.store.apply(batch)?;
        self.connector_view(&r)
    }

    /// Refused while a component is bound to it.
    pub fn connector_delete(&self, name: &str) -> Result<()> {
        let r = self.connector_or_err(name)?;
        let users = self.connector_users(&r.id)?;
        if !users.is_empty() {
            return Err(Error::invalid(
                format!(
                    "service connector `{name}` is used by {}",
                    users
                        .iter()
                        .map(|u| format!("`{u}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "bind those components to another connector (`strata <type> update NAME --connector=OTHER`) or delete them first",
            ));
        }
        let mut batch = Batch::new();
        batch.remove(TreeId::Connectors, name);
        self.move_grants(&mut batch, "connector", name, None)?;
        self.store.apply(batch)
    }

    /// Makes one real request to the endpoint with the credentials: `aws` lists the
    /// buckets (`GET /`, signed), `bearer` and `basic` get the endpoint's URL. A `2xx` is
    /// taken for "the credentials work" only if the same request without them is
    /// refused: a URL that answers anybody (a registry's `/`, a web page) proves nothing.
    pub fn connector_verify(&self, name: &str) -> Result<ConnectorCheck> {
        let r = self.connector_or_err(name)?;
        let granted = self.connector_grant(&r, true)?;
        let url = if r.kind == "aws" {
            let o = &granted.origin;
            format!("{o}/")
        } else {
            r.endpoint.clone()
        };
        let request = format!("GET {url}");
        let answer = crate::sandbox::net::probe(
            "GET",
            &url,
            granted.credential.clone(),
            Duration::from_secs(10),
        );
        let secrets = granted
            .credential
            .as_ref()
            .map(|c| c.secrets())
            .unwrap_or_default();
        let mask = |s: String| crate::sandbox::host::mask(s, &secrets);
        // Whether the URL answers without the credentials too (asked only after a 2xx).
        let open_to_all = |status: u16| {
            (200..300).contains(&status)
                && crate::sandbox::net::probe("GET", &url, None, Duration::from_secs(10))
                    .is_ok_and(|(bare, _)| (200..300).contains(&bare))
        };
        Ok(match answer {
            Ok((status, _)) if open_to_all(status) => ConnectorCheck {
                name: name.to_string(),
                ok: false,
                detail: mask(format!(
                    "{request} answered {status} with the credentials and without them: that URL does not check them, so this cannot tell whether they work; point the endpoint at a URL that needs them (`strata service-connector update {name} --endpoint=URL`: for a registry, its `/v2/`), or bring up a component that uses the connector"
                )),
                request,
                status: Some(status),
            },
            Ok((status, body)) => {
                let ok = (200..300).contains(&status);
                let detail = match status {
                    200..=299 => format!("the credentials work: {request} answered {status}"),
                    401 | 403 => {
                        let code = body
                            .split("<Code>")
                            .nth(1)
                            .and_then(|c| c.split("</Code>").next())
                            .map(|c| format!(" ({c})"))
                            .unwrap_or_default();
                        format!(
                            "{url} refused the credentials: {status}{code}; check them with `strata service-connector describe {name}` and fix them with `strata service-connector update {name} --KEY=VALUE`"
                        )
                    }
                    _ => format!(
                        "{url} answered {status}, which says nothing about the credentials: is the endpoint the service's own URL?"
                    ),
                };
                ConnectorCheck {
                    name: name.to_string(),
                    ok,
                    request,
                    status: Some(status),
                    detail: mask(detail),
                }
            }
            Err(why) => ConnectorCheck {
                name: name.to_string(),
                ok: false,
                detail: mask(format!("{request} got no answer: {why}")),
                request,
                status: None,
            },
        })
    }

    /// The origin of `r`'s endpoint as the gate grants it; with `open`, its credential
    /// too (decrypted: only for a call or `verify`, never for a view).
    pub(super) fn connector_grant(&self, r: &ConnectorRecord, open: bool) -> Result<Granted> {
        let origin = Origin::of_url(&r.endpoint).map_err(|e| Error::Corrupt {
            key: format!("connectors/{}", r.name),
            reason: format!("its endpoint is not usable: {e}"),
        })?;
        let granted = Granted {
            origin,
            from: format!("connector {}", r.name),
            credential: None,
            connector: Some(r.name.clone()),
        };
        if !open {
            return Ok(granted);
        }
        let mut secrets = self.open_sealed(
            &format!("connectors/{}", r.name),
            &r.id,
            &r.nonce,
            &r.sealed,
        )?;
        let setting = |k: &str| r.settings.get(k).cloned().unwrap_or_default();
        let credential = match r.kind.as_str() {
            "aws" => Credential::Aws(sigv4::Keys {
                access_key_id: setting("access_key_id"),
                secret_access_key: secrets.remove("secret_access_key").unwrap_or_default(),
                session_token: secrets.remove("session_token").filter(|t| !t.is_empty()),
                region: r
                    .settings
                    .get("region")
                    .cloned()
                    .unwrap_or_else(|| "us-east-1".into()),
                service: r
                    .settings
                    .get("service")
                    .cloned()
                    .unwrap_or_else(|| "s3".into()),
            }),
            "bearer" => Credential::Bearer {
                token: secrets.remove("token").unwrap_or_default(),
            },
            _ => Credential::Basic {
                user: setting("username"),
                password: secrets.remove("password").unwrap_or_default(),
            },
        };
        Ok(Granted {
            credential: Some(Arc::new(credential)),
            ..granted
        })
    }

    /// What a flavor is told of the connector: `connector.*` pairs, no credential.
    pub(super) fn connector_context(r: &ConnectorRecord) -> Vec<(String, String)> {
        let mut out = vec![
            ("connector.name".to_string(), r.name.clone()),
            ("connector.type".to_string(), r.kind.clone()),
            ("connector.endpoint".to_string(), r.endpoint.clone()),
        ];
        if r.kind == "aws" {
            for k in ["region", "service"] {
                if let Some(v) = r.settings.get(k) {
                    out.push((format!("connector.{k}"), v.clone()));
                }
            }
        }
        out
    }

    fn connector_users(&self, id: &str) -> Result<Vec<String>> {
        Ok(self
            .store
            .components(None)?
            .into_iter()
            .filter(|c| c.connector.as_deref() == Some(id))
            .map(|c| format!("{}/{}", c.component_type, c.name))
            .collect())
    }

    fn connector_view(&self, r: &ConnectorRecord) -> Result<ConnectorView> {
        let mut values = r.settings.clone();
        for k in &r.secret_keys {
            values.insert(k.clone(), crate::sandbox::host::MASK.to_string());
        }
        Ok(ConnectorView {
            id: r.id.clone(),
            name: r.name.clone(),
            kind: r.kind.clone(),
            endpoint: r.endpoint.clone(),
            values,
            used_by: self.connector_users(&r.id)?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }

    /// Every origin component `c` (of flavor record `f`) may reach: the values the
    /// user typed in its `url` fields, its connector's endpoint, and the extra origins
    /// accepted at the flavor's registration. A default never grants an origin. With
    /// `open`, the connector's credential is decrypted for the call.
    pub(super) fn net_grants(
        &self,
        f: &crate::model::FlavorRecord,
        c: &ComponentRecord,
        open: bool,
    ) -> Result<Vec<Granted>> {
        let mut out: Vec<Granted> = Vec::new();
        let mut add = |g: Granted| {
            if let Some(same) = out.iter_mut().find(|x| x.origin == g.origin) {
                // A connector's credential wins over a plain grant of the same origin.
                if g.connector.is_some() {
                    *same = g;
                }
            } else {
                out.push(g);
            }
        };
        for spec in &f.info.config {
            if spec.kind != crate::model::FieldKind::Url {
                continue;
            }
            let Some(v) = c.config.get(&spec.name) else {
                continue;
            };
            // A URL kept in a secret (a Slack webhook's path is its credential) grants
            // the origin of the secret's value; the value itself is masked like any
            // secret's. A reference that does not resolve grants nothing.
            let (url, from) = match crate::model::secret_reference(v) {
                Some((secret, key)) => match self.secret_value(secret, key) {
                    Ok(value) => (
                        value,
                        format!("field {} (secret {secret}.{key})", spec.name),
                    ),
                    Err(_) => continue,
                },
                None => (v.clone(), format!("field {}", spec.name)),
            };
            if let Ok(origin) = Origin::of_url(&url) {
                add(Granted {
                    origin,
                    from,
                    credential: None,
                    connector: None,
                });
            }
        }
        for o in &f.allowed_origins {
            if let Ok(origin) = Origin::of_url(o) {
                add(Granted {
                    origin,
                    from: "flavor (accepted at registration)".into(),
                    credential: None,
                    connector: None,
                });
            }
        }
        if let Some(id) = &c.connector {
            let r = self.connector_by_id(id)?;
            add(self.connector_grant(&r, open)?);
        }
        Ok(out)
    }

    /// [`Service::net_grants`] for display: no credential is decrypted.
    pub(super) fn net_grant_views(
        &self,
        f: &crate::model::FlavorRecord,
        c: &ComponentRecord,
    ) -> Vec<NetGrantView> {
        self.net_grants(f, c, false)
            .unwrap_or_default()
            .into_iter()
            .map(|g| NetGrantView {
                origin: g.origin.to_string(),
                credential: g.connector,
                from: g.from,
            })
            .collect()
    }

    /// The id of this home's connector for an imported component's, which must have
    /// the same name and type.
    pub(super) fn imported_connector(
        &self,
        label: &str,
        x: &strata_api::views::ExportedConnector,
    ) -> Result<String> {
        let hint = format!(
            "register it first: `strata service-connector register {} --type {} --endpoint=URL …` (credentials are never exported)",
            x.name, x.kind
        );
        match self
            .store
            .get::<ConnectorRecord>(TreeId::Connectors, &x.name)?
        {
            None => Err(Error::not_found(
                format!(
                    "service connector `{}` (type `{}`), which {label} uses,",
                    x.name, x.kind
                ),
                hint,
            )),
            Some(r) if r.kind != x.kind => Err(Error::invalid(
                format!(
                    "{label} uses service connector `{}` of type `{}`, but this home's `{}` is of type `{}`",
                    x.name, x.kind, x.name, r.kind
                ),
                "rename this home's connector and register one of the right type under that name",
            )),
            Some(r) => Ok(r.id),
        }
    }

    /// The name of the connector with id `id`, for display.
    pub(super) fn connector_name(&self, id: &str) -> Option<String> {
        self.connector_by_id(id).ok().map(|r| r.name)
    }

    /// Binds (`Some(name)`), unbinds (`Some("")`) or leaves (`None`) a component's
    /// connector, from a `--connector=NAME` given with its configuration.
    pub(super) fn take_connector(
        &self,
        config: &mut BTreeMap<String, String>,
        current: Option<String>,
    ) -> Result<Option<String>> {
        match config.remove("connector") {
            None => Ok(current),
            Some(n) if n.is_empty() => Ok(None),
            Some(n) => {
                self.require(&crate::Need::ConnectorUse(n.clone()))?;
                self.connector_id(&n).map(Some)
            }
        }
    }
}
