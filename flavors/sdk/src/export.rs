//! The macros that make a [`Flavor`](crate::Flavor) the component's implementation.

/// Exports a [`Flavor`](crate::Flavor) as the component's implementation of the
/// `flavor` world: `strata_flavor_sdk::export!(MyFlavor);`, once, in the flavor's crate
/// (a `cdylib` built for `wasm32-wasip2`). `MyFlavor` is a type name in scope.
///
/// It writes the functions strata calls into the component, each calling the
/// [`lifecycle`](crate::lifecycle) function of the same name for `MyFlavor`.
#[macro_export]
macro_rules! export {
    ($flavor:ident) => {
        $crate::bindings::export_flavor_world!($flavor with_types_in $crate::bindings);
    };
}

/// Implements the `lifecycle` trait of bindings a flavor generated itself, with its
/// [`Flavor`](crate::Flavor): `impl_lifecycle!(MyFlavor, exports::strata::flavor::lifecycle::Guest);`.
///
/// This is for flavors of the `artifact-store-flavor` and `orchestrator-flavor` worlds,
/// which export a second interface and so need bindings of their own. Generate them
/// through this crate's wit-bindgen, mapping every imported interface onto this crate's
/// (`with`: strata's `types` and `host`, and the `wasi:*` ones behind the network) so
/// both sets of bindings use one `Context`, one `FlavorInfo`, one `log`, and
/// [`http`](crate::http) works unchanged; then implement the second interface by hand,
/// reading the call with [`Call::new`](crate::Call::new):
///
/// ```
/// // In the flavor's crate: `wit/` beside its Cargo.toml (here, strata's own).
/// strata_flavor_sdk::wit_bindgen::generate!({
///     path: "../../wit",
///     world: "strata:flavor/orchestrator-flavor",
///     runtime_path: "strata_flavor_sdk::rt",
///     with: {
///         "strata:flavor/types@0.2.0": strata_flavor_sdk::bindings::strata::flavor::types,
///         "strata:flavor/host@0.2.0": strata_flavor_sdk::bindings::strata::flavor::host,
///         "wasi:http/types@0.2.12": strata_flavor_sdk::bindings::wasi::http::types,
///         "wasi:http/outgoing-handler@0.2.12": strata_flavor_sdk::bindings::wasi::http::outgoing_handler,
///         "wasi:io/poll@0.2.12": strata_flavor_sdk::bindings::wasi::io::poll,
///         "wasi:io/error@0.2.12": strata_flavor_sdk::bindings::wasi::io::error,
///         "wasi:io/streams@0.2.12": strata_flavor_sdk::bindings::wasi::io::streams,
///         "wasi:clocks/monotonic-clock@0.2.12": strata_flavor_sdk::bindings::wasi::clocks::monotonic_clock,
///     },
/// });
///
/// use exports::strata::flavor::orchestrator::{self, Deployment, LaunchReport};
/// use strata_flavor_sdk::{Call, ComponentType, Config, Context, Flavor, Info, Problems, Result};
///
/// struct InOrder;
///
/// impl Flavor for InOrder {
///     type Settings = ();
///     type State = ();
///     fn info() -> Info {
///         Info::new("in-order", ComponentType::Orchestrator)
///     }
///     fn settings(_: &Config<'_>, _: &mut Problems) -> Option<()> {
///         Some(())
///     }
///     fn provision(_: &mut Call<'_, Self>) -> Result<()> {
///         Ok(())
///     }
///     fn deprovision(_: &mut Call<'_, Self>) -> Result<()> {
///         Ok(())
///     }
/// }
///
/// strata_flavor_sdk::impl_lifecycle!(InOrder, exports::strata::flavor::lifecycle::Guest);
///
/// impl orchestrator::Guest for InOrder {
///     fn launch(ctx: Context, run: Deployment) -> std::result::Result<LaunchReport, String> {
///         let call = Call::<InOrder>::new(&ctx)?;
///         if !call.phase().running {
///             return Err(format!("`{}` is not running: run {}", call.component_name, call.command("up")));
///         }
///         Ok(LaunchReport {
///             orchestrator_run_id: run.run_id,
///             schedule: run.steps.into_iter().map(|step| vec![step.name]).collect(),
///             detail: "one step at a time".to_string(),
///         })
///     }
/// }
///
/// export!(InOrder); // the export macro of the bindings generated above
///
/// fn main() {
///     use exports::strata::flavor::lifecycle::Guest as Lifecycle;
///     let ctx = Context {
///         component_id: "id".into(),
///         component_name: "o".into(),
///         config: vec![],
///         state: None,
///     };
///     let state = <InOrder as Lifecycle>::provision(ctx.clone()).unwrap();
///     let state = <InOrder as Lifecycle>::resume(Context { state, ..ctx.clone() }).unwrap();
///     let run = Deployment { run_id: "r1".into(), pipeline_name: "p".into(), steps: vec![], runtime: vec![] };
///     let report = <InOrder as orchestrator::Guest>::launch(Context { state, ..ctx.clone() }, run).unwrap();
///     assert_eq!(report.orchestrator_run_id, "r1");
///     let run = Deployment { run_id: "r2".into(), pipeline_name: "p".into(), steps: vec![], runtime: vec![] };
///     let refused = <InOrder as orchestrator::Guest>::launch(ctx, run).unwrap_err();
///     assert!(refused.contains("`strata orchestrator up o`"), "{refused}");
/// }
/// ```
#[macro_export]
macro_rules! impl_lifecycle {
    ($flavor:ty, $guest:path) => {
        impl $guest for $flavor {
            fn describe() -> $crate::bindings::strata::flavor::types::FlavorInfo {
                $crate::lifecycle::describe::<$flavor>()
            }
            fn validate(
                config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::core::result::Result<
                (),
                ::std::vec::Vec<$crate::bindings::strata::flavor::types::FieldError>,
            > {
                $crate::lifecycle::validate::<$flavor>(config)
            }
            fn provision(
                ctx: $crate::bindings::strata::flavor::types::Context,
            ) -> $crate::bindings::strata::flavor::types::StateResult {
                $crate::lifecycle::provision::<$flavor>(ctx)
            }
            fn deprovision(
                ctx: $crate::bindings::strata::flavor::types::Context,
            ) -> $crate::bindings::strata::flavor::types::StateResult {
                $crate::lifecycle::deprovision::<$flavor>(ctx)
            }
            fn resume(
                ctx: $crate::bindings::strata::flavor::types::Context,
            ) -> $crate::bindings::strata::flavor::types::StateResult {
                $crate::lifecycle::resume::<$flavor>(ctx)
            }
            fn suspend(
                ctx: $crate::bindings::strata::flavor::types::Context,
            ) -> $crate::bindings::strata::flavor::types::StateResult {
                $crate::lifecycle::suspend::<$flavor>(ctx)
            }
            fn status(
                ctx: $crate::bindings::strata::flavor::types::Context,
            ) -> $crate::bindings::strata::flavor::types::Status {
                $crate::lifecycle::status::<$flavor>(ctx)
            }
            fn prepare_pipeline_deployment(
                ctx: $crate::bindings::strata::flavor::types::Context,
                runtime: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::core::result::Result<(), ::std::string::String> {
                $crate::lifecycle::prepare_pipeline_deployment::<$flavor>(ctx, runtime)
            }
        }
    };
}
