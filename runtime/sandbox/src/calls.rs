//! The typed calls strata makes into a flavor. Each runs in a fresh instance
//! ([`Sandbox::call`]) and lifts the flavor's answer through bounded types ([`super::lift`]):
//! nothing a flavor returns is copied into strata before it has been counted.

use super::bindings::{artifact_store as wit_store, orchestrator as wit_orch, types};
use super::lift::{
    self, BList, BStr, RawDirEntry, RawFieldError, RawFlavorInfo, RawLaunchReport, RawStatus,
};
use super::{Called, Grants, Limits, Loaded, Sandbox};
use crate::error::{Error, Fault, Result};
use crate::model::{FieldProblem, FieldSpec, FlavorInfo, RequirementKind, StackRequirement};

/// One flavor, ready to be called with the given grants and limits.
pub struct Target<'a> {
    pub sandbox: &'a Sandbox,
    pub loaded: &'a Loaded,
    pub flavor: &'a str,
    pub grants: &'a Grants,
    pub limits: &'a Limits,
}

/// The lifecycle steps that may hand back new state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Provision,
    Deprovision,
    Resume,
    Suspend,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Provision => "provision",
            Step::Deprovision => "deprovision",
            Step::Resume => "resume",
            Step::Suspend => "suspend",
        }
    }
}

/// What strata tells a flavor about a component.
#[derive(Clone, Debug)]
pub struct Context {
    pub component_id: String,
    pub component_name: String,
    pub config: Vec<(String, String)>,
    pub state: Option<Vec<u8>>,
}

impl Context {
    fn wit(&self) -> types::Context {
        types::Context {
            component_id: self.component_id.clone(),
            component_name: self.component_name.clone(),
            config: self.config.clone(),
            state: self.state.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    CreateNew,
    Truncate,
    Append,
}

pub use strata_model::calls::{DirEntry, FileStat, FlavorStatus, LaunchReport, PipelineStep};

impl Target<'_> {
    /// Calls export `func` of a fresh instance with `params`. Its answer is lifted as
    /// `R` (bounded types: [`super::lift`]) against the call's cap on returned bytes,
    /// then turned into host values by `read`, with a [`Mask`] of the call's secrets.
    fn call<P, R, T>(
        &self,
        func: &'static str,
        params: P,
        read: impl FnOnce(R, &Mask<'_>) -> std::result::Result<T, Fault>,
    ) -> Result<Called<T>>
    where
        P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
        R: wasmtime::component::Lift + 'static,
    {
        let Some(index) = self.loaded.funcs.get(func) else {
            return Err(missing_interface(self.flavor, func));
        };
        let limit = self.limits.max_return_bytes;
        let called = self.sandbox.call(
            self.loaded,
            self.flavor,
            func,
            self.grants,
            self.limits,
            |store, instance| {
                let f = instance.get_typed_func::<P, (R,)>(&mut *store, index)?;
                let (raw,) = lift::with_budget(limit, || f.call(&mut *store, params))?;
                Ok(raw)
            },
        )?;
        let mask = Mask(&self.grants.secrets);
        match read(called.value, &mask) {
            Ok(value) => Ok(Called {
                value,
                logs: called.logs,
                dropped_logs: called.dropped_logs,
                elapsed: called.elapsed,
            }),
            Err(fault) => Err(Error::Sandbox {
                flavor: self.flavor.to_string(),
                call: func.to_string(),
                fault,
                source: None,
            }),
        }
    }

    pub fn describe(&self) -> Result<Called<FlavorInfo>> {
        if self.loaded.wit_version() == "0.1.0" {
            return self.call("describe", (), |raw: lift::RawFlavorInfoV1, m| {
                Ok(Self::info(raw.into(), m, "0.1.0"))
            });
        }
        self.call("describe", (), |raw: RawFlavorInfo, m| {
            Ok(Self::info(raw, m, self.loaded.wit_version()))
        })
    }

    fn info(raw: RawFlavorInfo, m: &Mask<'_>, wit: &str) -> FlavorInfo {
        FlavorInfo {
            name: m.s(raw.name),
            component_type: raw.component_type.into(),
            version: m.s(raw.version),
            description: m.s(raw.description),
            config: raw
                .config
                .0
                .into_iter()
                .map(|f| FieldSpec {
                    name: m.s(f.name),
                    kind: f.kind.into(),
                    required: f.required,
                    default: f.default.map(|d| m.s(d)),
                    description: m.s(f.description),
                })
                .collect(),
            supported_schemes: m.all(raw.supported_schemes.0),
            requirements: raw
                .requirements
                .0
                .into_iter()
                .map(|r| StackRequirement {
                    kind: match r.kind {
                        types::RequirementKind::Requires => RequirementKind::Requires,
                        types::RequirementKind::Refuses => RequirementKind::Refuses,
                    },
                    component_type: r.component_type.into(),
                    flavor: r.flavor.map(|f| m.s(f)),
                    reason: m.s(r.reason),
                })
                .collect(),
            origins: raw
                .origins
                .0
                .into_iter()
                .map(|o| {
                    let o = m.s(o);
                    // Normalized where it parses; `problems` refuses what does not.
                    crate::model::origin::Origin::of_url(&o)
                        .map(|x| x.to_string())
                        .unwrap_or(o)
                })
                .collect(),
            wit: wit.to_string(),
        }
    }

    pub fn validate(
        &self,
        config: &[(String, String)],
    ) -> Result<Called<Result<(), Vec<FieldProblem>>>> {
        self.call(
            "validate",
            (config,),
            |raw: Result<(), BList<RawFieldError, lift::FieldErrors>>, m| {
                Ok(raw.map_err(|errs| {
                    errs.0
                        .into_iter()
                        .map(|e| {
                            let field = e.field.map(|f| m.s(f));
                            let message = m.s(e.message);
                            FieldProblem {
                                message: match &field {
                                    Some(f) => format!("field `{f}`: {message}"),
                                    None => message,
                                },
                                field,
                            }
                        })
                        .collect()
                }))
            },
        )
    }

    pub fn step(
        &self,
        step: Step,
        ctx: &Context,
    ) -> Result<Called<Result<Option<Vec<u8>>, String>>> {
        self.call(
            step.as_str(),
            (ctx.wit(),),
            |raw: Result<Option<BList<u8, lift::Bytes>>, BStr>, m| {
                Ok(m.result(raw).map(|state| state.map(|b| b.0)))
            },
        )
    }

    pub fn status(&self, ctx: &Context) -> Result<Called<FlavorStatus>> {
        self.call("status", (ctx.wit(),), |raw: RawStatus, m| {
            Ok(FlavorStatus {
                provisioned: raw.provisioned,
                running: raw.running,
                detail: m.s(raw.detail),
            })
        })
    }

    pub fn prepare(
        &self,
        ctx: &Context,
        runtime: &[(String, String)],
    ) -> Result<Called<Result<(), String>>> {
        self.call(
            "prepare-pipeline-deployment",
            (ctx.wit(), runtime),
            |raw: Result<(), BStr>, m| Ok(m.result(raw)),
        )
    }

    /// Hands a pipeline run to an orchestrator. Its report is read only as far as it can
    /// be true: at most one entry per step of the pipeline.
    pub fn launch(
        &self,
        ctx: &Context,
        run_id: &str,
        pipeline: &str,
        steps: &[PipelineStep],
        runtime: &[(String, String)],
    ) -> Result<Called<Result<LaunchReport, String>>> {
        let run = wit_orch::Deployment {
            run_id: run_id.to_string(),
            pipeline_name: pipeline.to_string(),
            steps: steps
                .iter()
                .map(|s| wit_orch::Step {
                    name: s.name.clone(),
                    upstream: s.upstream.clone(),
                    parameters: s
                        .parameters
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                })
                .collect(),
            runtime: runtime.to_vec(),
        };
        let n = steps.len();
        self.call(
            "launch",
            (ctx.wit(), run),
            move |raw: Result<RawLaunchReport, BStr>, m| {
                let r = match raw {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(m.s(e))),
                };
                let entries: usize = r.schedule.0.iter().map(|w| w.0.len()).sum();
                if r.schedule.0.len() > n || entries > n {
                    let (what, count) = if r.schedule.0.len() > n {
                        ("waves", r.schedule.0.len())
                    } else {
                        ("scheduled steps", entries)
                    };
                    return Err(Fault::TooMany {
                        what: format!("{what} for a pipeline of {n} steps"),
                        count: count as u64,
                        limit: n as u64,
                    });
                }
                Ok(Ok(LaunchReport {
                    orchestrator_run_id: m.s(r.orchestrator_run_id),
                    schedule: r.schedule.0.into_iter().map(|w| m.all(w.0)).collect(),
                    detail: m.s(r.detail),
                }))
            },
        )
    }

    /// Sends a message through an alerter. Its answer is one line for the user.
    pub fn post(
        &self,
        ctx: &Context,
        message: &str,
        params: &[(String, String)],
    ) -> Result<Called<Result<String, String>>> {
        self.call(
            "post",
            (ctx.wit(), message.to_string(), params.to_vec()),
            |raw: Result<BStr, BStr>, m| {
                Ok(match raw {
                    Ok(line) => Ok(m.s(line)),
                    Err(e) => Err(m.s(e)),
                })
            },
        )
    }

    /// The environment variables an experiment tracker gives every step of `run_id`.
    pub fn step_environment(
        &self,
        ctx: &Context,
        run_id: &str,
    ) -> Result<Called<Result<Vec<(String, String)>, String>>> {
        self.call(
            "step-environment",
            (ctx.wit(), run_id.to_string()),
            |raw: Result<BList<(BStr, BStr), lift::EnvVars>, BStr>, m| {
                Ok(match raw {
                    Ok(vars) => Ok(vars.0.into_iter().map(|(k, v)| (m.s(k), m.s(v))).collect()),
                    Err(e) => Err(m.s(e)),
                })
            },
        )
    }

    /// Closes an experiment tracker's run for `run_id` with `status`.
    pub fn finish_run(
        &self,
        ctx: &Context,
        run_id: &str,
        status: &str,
    ) -> Result<Called<Result<String, String>>> {
        self.call(
            "finish-run",
            (ctx.wit(), run_id.to_string(), status.to_string()),
            |raw: Result<BStr, BStr>, m| {
                Ok(match raw {
                    Ok(line) => Ok(m.s(line)),
                    Err(e) => Err(m.s(e)),
                })
            },
        )
    }

    pub fn store_exists(&self, ctx: &Context, path: &str) -> Result<Called<Result<bool, String>>> {
        self.call("exists", (ctx.wit(), path), |raw: Result<bool, BStr>, m| {
            Ok(m.result(raw))
        })
    }

    pub fn store_stat(
        &self,
        ctx: &Context,
        path: &str,
    ) -> Result<Called<Result<FileStat, String>>> {
        self.call(
            "stat",
            (ctx.wit(), path),
            |raw: Result<wit_store::FileStat, BStr>, m| {
                Ok(m.result(raw).map(|st| FileStat {
                    size: st.size,
                    is_dir: st.is_dir,
                    modified_ms: st.modified_ms,
                }))
            },
        )
    }

    /// Reads `length` bytes at `offset`; a flavor that returns more than it was asked
    /// for is refused.
    pub fn store_read(
        &self,
        ctx: &Context,
        path: &str,
        offset: u64,
        length: u64,
    ) -> Result<Called<Result<Vec<u8>, String>>> {
        self.call(
            "read",
            (ctx.wit(), path, offset, length),
            |raw: Result<BList<u8, lift::Bytes>, BStr>, m| match m.result(raw) {
                Ok(bytes) if bytes.0.len() as u64 > length => Err(Fault::TooMany {
                    what: "bytes from `read`".into(),
                    count: bytes.0.len() as u64,
                    limit: length,
                }),
                other => Ok(other.map(|b| b.0)),
            },
        )
    }

    pub fn store_write(
        &self,
        ctx: &Context,
        path: &str,
        data: &[u8],
        mode: WriteMode,
    ) -> Result<Called<Result<u64, String>>> {
        let mode = match mode {
            WriteMode::CreateNew => wit_store::WriteMode::CreateNew,
            WriteMode::Truncate => wit_store::WriteMode::Truncate,
            WriteMode::Append => wit_store::WriteMode::Append,
        };
        self.call(
            "write",
            (ctx.wit(), path, data, mode),
            |raw: Result<u64, BStr>, m| Ok(m.result(raw)),
        )
    }

    pub fn store_list(
        &self,
        ctx: &Context,
        path: &str,
    ) -> Result<Called<Result<Vec<DirEntry>, String>>> {
        self.call(
            "list",
            (ctx.wit(), path),
            |raw: Result<BList<RawDirEntry, lift::DirEntries>, BStr>, m| {
                Ok(m.result(raw).map(|es| {
                    es.0.into_iter()
                        .map(|e| DirEntry {
                            name: m.s(e.name),
                            is_dir: e.is_dir,
                        })
                        .collect()
                }))
            },
        )
    }

    fn unit(
        &self,
        func: &'static str,
        params: impl UnitParams,
    ) -> Result<Called<Result<(), String>>> {
        params.call(self, func)
    }

    pub fn store_makedirs(&self, ctx: &Context, path: &str) -> Result<Called<Result<(), String>>> {
        self.unit("makedirs", (ctx.wit(), path))
    }

    pub fn store_remove(
        &self,
        ctx: &Context,
        path: &str,
        recursive: bool,
    ) -> Result<Called<Result<(), String>>> {
        self.unit("remove", (ctx.wit(), path, recursive))
    }

    pub fn store_rename(
        &self,
        ctx: &Context,
        from: &str,
        to: &str,
        overwrite: bool,
    ) -> Result<Called<Result<(), String>>> {
        self.unit("rename", (ctx.wit(), from, to, overwrite))
    }

    pub fn store_copy(
        &self,
        ctx: &Context,
        from: &str,
        to: &str,
        overwrite: bool,
    ) -> Result<Called<Result<(), String>>> {
        self.unit("copy", (ctx.wit(), from, to, overwrite))
    }
}

/// The secrets resolved for a call, masked out of every string it returns.
struct Mask<'a>(&'a [String]);

impl Mask<'_> {
    fn s(&self, s: BStr) -> String {
        super::host::mask(s.0, self.0)
    }

    fn all(&self, v: Vec<BStr>) -> Vec<String> {
        v.into_iter().map(|s| self.s(s)).collect()
    }

    /// `result<T, string>`, its error text masked.
    fn result<T>(&self, r: std::result::Result<T, BStr>) -> std::result::Result<T, String> {
        r.map_err(|e| self.s(e))
    }
}

/// The parameters of an artifact-store call that answers `result<_, string>`.
trait UnitParams {
    fn call(self, target: &Target<'_>, func: &'static str) -> Result<Called<Result<(), String>>>;
}

impl<P> UnitParams for P
where
    P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
{
    fn call(self, target: &Target<'_>, func: &'static str) -> Result<Called<Result<(), String>>> {
        target.call(func, self, |raw: Result<(), BStr>, m| Ok(m.result(raw)))
    }
}

/// The error for a call into an interface the flavor does not export.
fn missing_interface(flavor: &str, func: &str) -> Error {
    let (interface, world) = if func == "launch" {
        ("orchestrator", "orchestrator-flavor")
    } else if func == "post" {
        ("alerter", "alerter-flavor")
    } else if func == "step-environment" || func == "finish-run" {
        ("experiment-tracker", "experiment-tracker-flavor")
    } else {
        ("artifact-store", "artifact-store-flavor")
    };
    Error::invalid(
        format!("flavor `{flavor}` does not export the {interface} interface"),
        format!("`{func}` needs a flavor built for the `{world}` world"),
    )
}

/// Whether a fault means the flavor was stopped by a limit (as opposed to its own bug).
pub fn is_limit(fault: &Fault) -> bool {
    matches!(
        fault,
        Fault::Timeout { .. }
            | Fault::Memory { .. }
            | Fault::ReturnTooLarge { .. }
            | Fault::TooMany { .. }
            | Fault::Handles { .. }
    )
}
