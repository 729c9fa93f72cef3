//! `oci`: a strata container registry on any registry that speaks the OCI
//! Distribution API (the Docker Registry HTTP API v2): Docker's `registry`, zot, Harbor,
//! a cloud registry.
//!
//! A component is a **namespace** in a registry: the repositories whose names start
//! with `namespace/` are its images. It speaks the API directly (`/v2/…`, JSON) over
//! `wasi:http`; it needs no Docker daemon.
//!
//! # Configuration
//!
//! | field | kind | |
//! |---|---|---|
//! | `uri` | url | The registry, like `http://127.0.0.1:5000` or `https://registry.example`. Optional when a service connector is bound. |
//! | `namespace` | text, default empty | The repository path this component's images go under, like `team/ml` (lower-case letters and digits, separated by `.`, `_`, `__`, `-` and `/`); empty: the whole registry. |
//!
//! **Credentials** come from a service connector, never from a field: bind the
//! component to a `basic` (user and password) or `bearer` (token) connector with
//! `--connector=NAME`, and strata adds the `Authorization` header to every request to
//! the connector's endpoint; the flavor never sees it. The registry is `uri` if given,
//! else the connector's endpoint; with both, they must be the same origin (scheme,
//! host, port), or every call fails saying so (`validate` cannot tell: it never sees
//! the connector). A `uri` holding `user:password@` is refused. A registry that hands
//! out tokens from a separate auth service (Docker Hub's `auth.docker.io`) needs a
//! token the registry itself accepts: strata's connectors fetch none.
//!
//! # What each step does
//!
//! A registry is shared: many stacks, people and CI jobs push to it, and it has no
//! namespaces to create (a repository appears when an image is pushed to it, under any
//! path). So this flavor **creates nothing and removes nothing**; `up` checks the
//! registry can be used, and `status` shows what is in it.
//!
//! - **validate** (`register`, `update`): checks `namespace` (the repository-name
//!   grammar; a trailing `/` is dropped) and `uri` (no user or password in it, no
//!   query or fragment). No network.
//! - **provision** (`up`): `GET /v2/` must answer 200: the server is a registry and
//!   takes these requests (with the connector's credentials, if bound). A 401 fails with
//!   "the registry refused the credentials (401)" and how to bind a connector; a server
//!   that does not answer fails naming its URL. Nothing is created, and a log line says
//!   so.
//! - **resume** / **suspend**: the defaults: nothing to start or stop (a registry runs
//!   on its own); the phase alone changes.
//! - **deprovision** (`down --force`): removes nothing: the images under the namespace
//!   stay in the registry (delete them with the registry's own tools). A log line says
//!   so. No request.
//! - **status** (`up`, `down`, `describe`): `GET /v2/`; provisioned: strata brought the
//!   component up and the registry answers 200; running: provisioned and resumed. The
//!   detail lists the repositories under the namespace, from `GET /v2/_catalog?n=100`
//!   (following its `Link: <…>; rel="next"` pages, at most 20; with a namespace the
//!   listing starts at `last=namespace/` and stops at the first name past it, as
//!   registries list names in lexical order), with the number of tags
//!   of the first 10 (`GET /v2/NAME/tags/list`): `` registry at URL answers; 3
//!   repositories under `team/`: team/app (3 tags), team/db (1 tag), … ``. A registry
//!   that keeps no catalog for these credentials (404, 401 or 403, as Docker Hub and
//!   GHCR) says `catalog not supported`. A 401 on `/v2/` is not usable: not
//!   provisioned, and the detail says why. Changes nothing. Bounded: at most 60
//!   requests and 5 s of listing (a registry checking a bcrypt password takes some
//!   250 ms a request); what the bounds leave out shows as `at least N repositories`
//!   or `tags not counted`.
//! - **prepare-pipeline-deployment**: accepts every run (nothing to prepare).
//!
//! Every error is one line: what failed (the request), the registry's answer (its HTTP
//! status and its own `CODE: message`), and what to do; a registry that does not
//! answer is named by its URL, with "the registry may be down".

use strata_flavor_sdk::endpoint;
mod registry;

use strata_flavor_sdk::prelude::*;

use endpoint::Server;
use registry::{Catalog, Ping, Registry, SERVICE};

/// Repositories whose tags `status` counts.
const DESCRIBED: usize = 10;

struct OciRegistry;

/// A component's configuration, read.
struct Settings {
    /// `uri`, else the connector's endpoint; `None` if neither is given.
    server: Option<Server>,
    /// Without a trailing `/`; empty for the whole registry.
    namespace: String,
}

impl Flavor for OciRegistry {
    type Settings = Settings;
    type State = ();

    fn info() -> Info {
        Info::new("oci", ComponentType::ContainerRegistry)
            .version(env!("CARGO_PKG_VERSION"))
            .description(
                "Any OCI Distribution (Docker Registry v2) registry: `up` checks it answers \
                 and takes the credentials; `describe` lists the repositories under the \
                 component's namespace. A registry is shared: nothing is created or \
                 removed. Credentials come from a `basic` or `bearer` service connector.",
            )
            .field(Field::url(
                "uri",
                "The registry, like http://127.0.0.1:5000; optional if a service connector \
                 is bound (its endpoint is the registry).",
            ))
            .field(
                Field::text(
                    "namespace",
                    "The repository path this component's images go under, like `team/ml`; \
                     empty for the whole registry.",
                )
                .default(""),
            )
    }

    fn settings(config: &Config<'_>, problems: &mut Problems) -> Option<Settings> {
        let namespace = config
            .get("namespace")
            .unwrap_or_default()
            .trim()
            .trim_end_matches('/')
            .to_string();
        if !namespace.is_empty()
            && let Err(why) = registry::check_namespace(&namespace)
        {
            problems.field("namespace", format!("`{namespace}` {why}"));
        }
        let server = endpoint::read(config, SERVICE, problems);
        problems
            .is_empty()
            .then_some(Settings { server, namespace })
    }

    fn provision(call: &mut Call<'_, Self>) -> Result<()> {
        let server = server(call)?;
        let registry = Registry::new(server);
        if let Ping::Unauthorized { challenge } = registry.ping()? {
            return Err(registry.unauthorized(challenge.as_deref()));
        }
        info!(
            "the registry at {} answers; a registry is shared, so strata creates nothing in \
             it: repositories appear in {} as images are pushed",
            server.base,
            scope(&call.settings.namespace)
        );
        Ok(())
    }

    fn deprovision(call: &mut Call<'_, Self>) -> Result<()> {
        info!(
            "removed nothing: a registry is shared, and the images in {} stay there \
             (delete them with the registry's own tools)",
            scope(&call.settings.namespace)
        );
        Ok(())
    }

    fn status(call: &Call<'_, Self>) -> Status {
        let server = match server(call) {
            Ok(server) => server,
            Err(err) => return Status::not_provisioned(err.to_string()),
        };
        let registry = Registry::new(server);
        match registry.ping() {
            // The registry cannot say: the phase strata recorded stands.
            Err(err) if call.phase().provisioned => {
                return Status::provisioned(
                    call.phase().running,
                    format!("{err} (the phase shown is the last one recorded)"),
                );
            }
            Err(err) => return Status::not_provisioned(err.to_string()),
            Ok(Ping::Unauthorized { challenge }) => {
                return Status::not_provisioned(format!(
                    "not usable: {}",
                    registry.unauthorized(challenge.as_deref())
                ));
            }
            Ok(Ping::Ok) => {}
        }
        let contents = match contents(&registry, &call.settings.namespace) {
            Ok(said) => said,
            Err(err) => err.to_string(),
        };
        let detail = format!("registry at {} answers; {contents}", server.base);
        let phase = call.phase();
        if phase.provisioned {
            Status::provisioned(phase.running, detail)
        } else {
            Status::not_provisioned(detail)
        }
    }
}

/// The component's registry, or the error of one that names none.
fn server<'c>(call: &'c Call<'_, OciRegistry>) -> Result<&'c Server> {
    endpoint::require(call.settings.server.as_ref(), SERVICE, call.component_name)
}

/// `` `team/` `` or `the registry`, for messages.
fn scope(namespace: &str) -> String {
    if namespace.is_empty() {
        "the registry".to_string()
    } else {
        format!("`{namespace}/`")
    }
}

/// What the registry holds under `namespace`, in one line: `3 repositories under
/// `team/`: team/app (3 tags), team/db (1 tag), …`.
fn contents(registry: &Registry<'_>, namespace: &str) -> Result<String> {
    let (repositories, complete) = match registry.catalog(namespace)? {
        Catalog::NotSupported { status } => {
            return Ok(format!(
                "catalog not supported (GET /v2/_catalog answered {status}): the registry \
                 does not list its repositories"
            ));
        }
        Catalog::Listed {
            repositories,
            complete,
        } => (repositories, complete),
    };
    let mut described = Vec::new();
    for name in repositories.iter().take(DESCRIBED) {
        described.push(match registry.tags(name)? {
            Some(1) => format!("{name} (1 tag)"),
            Some(n) => format!("{name} ({n} tags)"),
            None => format!("{name} (tags not counted)"),
        });
    }
    Ok(summary(namespace, repositories.len(), complete, &described))
}

/// The line of [`contents`]: how many repositories, then the ones described.
fn summary(namespace: &str, count: usize, complete: bool, described: &[String]) -> String {
    let at_least = if complete { "" } else { "at least " };
    let noun = if count == 1 {
        "repository"
    } else {
        "repositories"
    };
    let place = if namespace.is_empty() {
        String::new()
    } else {
        format!(" under `{namespace}/`")
    };
    if count == 0 {
        return match complete {
            true => format!("no repositories{place} yet"),
            false => format!("no repositories{place} in the catalog pages read"),
        };
    }
    let mut line = format!("{at_least}{count} {noun}{place}: {}", described.join(", "));
    if count > described.len() {
        line.push_str(&format!(", and {} more", count - described.len()));
    }
    line
}

strata_flavor_sdk::export!(OciRegistry);

#[cfg(test)]
mod tests;
