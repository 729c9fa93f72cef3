use super::bindings::{artifact_store as wit_store, orchestrator as wit_orch, types};
use super::{Called, Grants, Limits, Loaded, Sandbox, check_return};
use crate::error::{Error, Fault, Result};
use crate::model::{FieldProblem, FlavorInfo};

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

/// A flavor's answer to `status`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FlavorStatus {
    pub provisioned: bool,
    pub running: bool,
    pub detail: String,
}

/// A file or directory in an artifact store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FileStat {
    pub size: u64,
    pub is_dir: bool,
    pub modified_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    CreateNew,
    Truncate,
    Append,
}

/// A step of a pipeline handed to an orchestrator.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PipelineStep {
    pub name: String,
    #[serde(default)]
    pub upstream: Vec<String>,
    #[serde(default)]
    pub parameters: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LaunchReport {
    pub orchestrator_run_id: String,
    pub schedule: Vec<Vec<String>>,
    pub detail: String,
}

fn strs(v: &[String]) -> u64 {
    v.iter().map(|s| s.len() as u64).sum()
}

impl Target<'_> {
    fn run<T>(
        &self,
        call: &str,
        f: impl FnOnce(
            &mut wasmtime::Store<super::HostState>,
            &wasmtime::component::Instance,
        ) -> wasmtime::Result<T>,
    ) -> Result<Called<T>> {
        self.sandbox
            .call(self.loaded, self.flavor, call, self.grants, self.limits, f)
    }

    fn check(&self, call: &str, bytes: u64) -> Result<()> {
        check_return(self.flavor, call, bytes, self.limits)
    }

    fn lifecycle<T>(
        &self,
        call: &str,
        f: impl FnOnce(
            &super::bindings::lifecycle::Guest,
            &mut wasmtime::Store<super::HostState>,
        ) -> wasmtime::Result<T>,
    ) -> Result<Called<T>> {
        let indices = &self.loaded.lifecycle;
        self.run(call, |store, instance| {
            let guest = indices.load(&mut *store, instance)?;
            f(&guest, store)
        })
    }

    fn store_op<T>(
        &self,
        call: &str,
        f: impl FnOnce(
            &wit_store::Guest,
            &mut wasmtime::Store<super::HostState>,
        ) -> wasmtime::Result<Result<T, String>>,
    ) -> Result<Called<Result<T, String>>> {
        let Some(indices) = &self.loaded.artifact_store else {
            return Err(Error::invalid(
                format!(
                    "flavor `{}` does not export the artifact-store interface",
                    self.flavor
                ),
                "artifact-store operations need a flavor built for the `artifact-store-flavor` world",
            ));
        };
        self.run(call, |store, instance| {
            let guest = indices.load(&mut *store, instance)?;
            f(&guest, store)
        })
    }

    pub fn describe(&self) -> Result<Called<FlavorInfo>> {
        let called = self.lifecycle("describe", |g, s| g.call_describe(s))?;
        self.check("describe", called.value.returned_bytes())?;
        Ok(Called {
            value: called.value.into(),
            logs: called.logs,
            dropped_logs: called.dropped_logs,
            elapsed: called.elapsed,
        })
    }

    pub fn validate(
        &self,
        config: &[(String, String)],
    ) -> Result<Called<Result<(), Vec<FieldProblem>>>> {
        let called = self.lifecycle("validate", |g, s| g.call_validate(s, config))?;
        let value = called.value.map_err(|errs| {
            errs.into_iter()
                .map(|e| FieldProblem {
                    message: match &e.field {
                        Some(f) => format!("field `{f}`: {}", e.message),
                        None => e.message.clone(),
                    },
                    field: e.field,
                })
                .collect::<Vec<_>>()
        });
        if let Err(p) = &value {
            self.check("validate", p.iter().map(|p| p.message.len() as u64).sum())?;
        }
        Ok(Called {
            value,
            logs: called.logs,
            dropped_logs: called.dropped_logs,
            elapsed: called.elapsed,
        })
    }

    pub fn step(
        &self,
        step: Step,
        ctx: &Context,
    ) -> Result<Called<Result<Option<Vec<u8>>, String>>> {
        let wctx = ctx.wit();
        let called = self.lifecycle(step.as_str(), |g, s| match step {
            Step::Provision => g.call_provision(s, &wctx),
            Step::Deprovision => g.call_deprovision(s, &wctx),
            Step::Resume => g.call_resume(s, &wctx),
            Step::Suspend => g.call_suspend(s, &wctx),
        })?;
        let bytes = match &called.value {
            Ok(state) => state.as_ref().map_or(0, |s| s.len() as u64),
            Err(m) => m.len() as u64,
        };
        self.check(step.as_str(), bytes)?;
        Ok(called)
    }

    pub fn status(&self, ctx: &Context) -> Result<Called<FlavorStatus>> {
        let wctx = ctx.wit();
        let called = self.lifecycle("status", |g, s| g.call_status(s, &wctx))?;
        self.check("status", called.value.detail.len() as u64)?;
        let v = called.value;
        Ok(Called {
            value: FlavorStatus {
                provisioned: v.provisioned,
                running: v.running,
                detail: v.detail,
            },
            logs: called.logs,
            dropped_logs: called.dropped_logs,
            elapsed: called.elapsed,
        })
    }

    pub fn prepare(
        &self,
        ctx: &Context,
        runtime: &[(String, String)],
    ) -> Result<Called<Result<(), String>>> {
        let wctx = ctx.wit();
        let called = self.lifecycle("prepare-pipeline-deployment", |g, s| {
            g.call_prepare_pipeline_deployment(s, &wctx, runtime)
        })?;
        if let Err(m) = &called.value {
            self.check("prepare-pipeline-deployment", m.len() as u64)?;
        }
        Ok(called)
    }

    pub fn launch(
        &self,
        ctx: &Context,
        run_id: &str,
        pipeline: &str,
        steps: &[PipelineStep],
        runtime: &[(String, String)],
    ) -> Result<Called<Result<LaunchReport, String>>> {
        let Some(indices) = &self.loaded.orchestrator else {
            return Err(Error::invalid(
                format!(
                    "flavor `{}` does not export the orchestrator interface",
                    self.flavor
                ),
                "a pipeline needs an orchestrator flavor built for the `orchestrator-flavor` world",
            ));
        };
        let wctx = ctx.wit();
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
        let called = self.run("launch", |store, instance| {
            let guest = indices.load(&mut *store, instance)?;
            guest.call_launch(store, &wctx, &run)
        })?;
        let bytes = match &called.value {
            Ok(r) => {
                r.orchestrator_run_id.len() as u64
                    + r.detail.len() as u64
                    + r.schedule.iter().map(|w| strs(w)).sum::<u64>()
            }
            Err(m) => m.len() as u64,
        };
        self.check("launch", bytes)?;
        let value = called.value.map(|r| LaunchReport {
            orchestrator_run_id: r.orchestrator_run_id,
            schedule: r.schedule,
            detail: r.detail,
        });
        Ok(Called {
            value,
            logs: called.logs,
            dropped_logs: called.dropped_logs,
            elapsed: called.elapsed,
        })
    }

    pub fn store_exists(&self, ctx: &Context, path: &str) -> Result<Result<bool, String>> {
        let c = ctx.wit();
        Ok(self
            .store_op("exists", |g, s| g.call_exists(s, &c, path))?
            .value)
    }

    pub fn store_stat(&self, ctx: &Context, path: &str) -> Result<Result<FileStat, String>> {
        let c = ctx.wit();
        let v = self
            .store_op("stat", |g, s| g.call_stat(s, &c, path))?
            .value;
        Ok(v.map(|st| FileStat {
            size: st.size,
            is_dir: st.is_dir,
            modified_ms: st.modified_ms,
        }))
    }

    pub fn store_read(
        &self,
        ctx: &Context,
        path: &str,
        offset: u64,
        length: u64,
    ) -> Result<Result<Vec<u8>, String>> {
        let c = ctx.wit();
        let v = self
            .store_op("read", |g, s| g.call_read(s, &c, path, offset, length))?
            .value;
        if let Ok(bytes) = &v {
            self.check("read", bytes.len() as u64)?;
        }
        Ok(v)
    }

    pub fn store_write(
        &self,
        ctx: &Context,
        path: &str,
        data: &[u8],
        mode: WriteMode,
    ) -> Result<Result<u64, String>> {
        let c = ctx.wit();
        let mode = match mode {
            WriteMode::CreateNew => wit_store::WriteMode::CreateNew,
            WriteMode::Truncate => wit_store::WriteMode::Truncate,
            WriteMode::Append => wit_store::WriteMode::Append,
        };
        Ok(self
            .store_op("write", |g, s| g.call_write(s, &c, path, data, mode))?
            .value)
    }

    pub fn store_list(&self, ctx: &Context, path: &str) -> Result<Result<Vec<DirEntry>, String>> {
        let c = ctx.wit();
        let v = self
            .store_op("list", |g, s| g.call_list(s, &c, path))?
            .value;
        if let Ok(entries) = &v {
            self.check(
                "list",
                entries.iter().map(|e| e.name.len() as u64 + 1).sum(),
            )?;
        }
        Ok(v.map(|es| {
            es.into_iter()
                .map(|e| DirEntry {
                    name: e.name,
                    is_dir: e.is_dir,
                })
                .collect()
        }))
    }

    pub fn store_makedirs(&self, ctx: &Context, path: &str) -> Result<Result<(), String>> {
        let c = ctx.wit();
        Ok(self
            .store_op("makedirs", |g, s| g.call_makedirs(s, &c, path))?
            .value)
    }

    pub fn store_remove(
        &self,
        ctx: &Context,
        path: &str,
        recursive: bool,
    ) -> Result<Result<(), String>> {
        let c = ctx.wit();
        Ok(self
            .store_op("remove", |g, s| g.call_remove(s, &c, path, recursive))?
            .value)
    }

    pub fn store_rename(
        &self,
        ctx: &Context,
        from: &str,
        to: &str,
        overwrite: bool,
    ) -> Result<Result<(), String>> {
        let c = ctx.wit();
        Ok(self
            .store_op("rename", |g, s| g.call_rename(s, &c, from, to, overwrite))?
            .value)
    }

    pub fn store_copy(
        &self,
        ctx: &Context,
        from: &str,
        to: &str,
        overwrite: bool,
    ) -> Result<Result<(), String>> {
        let c = ctx.wit();
        Ok(self
            .store_op("copy", |g, s| g.call_copy(s, &c, from, to, overwrite))?
            .value)
    }
}

/// Whether a fault means the flavor was stopped by a limit (as opposed to its own bug).
pub fn is_limit(fault: &Fault) -> bool {
    matches!(
        fault,
        Fault::Timeout { .. } | Fault::Memory { .. } | Fault::ReturnTooLarge { .. }
    )
}
