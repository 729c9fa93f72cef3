//! Reading what a flavor returns without trusting its size.
//!
//! A flavor's answer lives in its linear memory (up to its memory cap, 256 MiB by
//! default), and wasmtime copies it into host values when the call returns. Copied the
//! usual way (`Vec<String>`, …) it is allocated before anything can be counted: five
//! million empty strings are 40 MB in the guest and 120 MB in the host, and cost nothing
//! to a cap that counts bytes of text alone. So the answer of every call is lifted
//! through the types here, which check before they copy:
//!
//! - [`BList<T, B>`]: a list whose length is checked against its own bound `B` (see
//!   [`Bound`]) from the list's header, before one element is read;
//! - [`BStr`]: a string, from its header likewise;
//! - and every string and element is charged to the call's [`Budget`] (bytes, plus
//!   [`ELEMENT_COST`] per element), a cap on the whole answer (1 MiB by default).
//!
//! So no answer makes strata allocate more than a small multiple of its cap. An answer
//! over either bound fails the call with [`Fault::ReturnTooLarge`] or [`Fault::TooMany`]
//! (see [`exceeded`]); nothing of it is kept.
//!
//! The checks run inside wasmtime's lifting (the `Lift` trait), because that is the only
//! moment the answer is whole: right after, the guest's `post-return` frees it.

use std::cell::Cell;
use std::marker::PhantomData;

use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift, WasmList, WasmStr};

use super::bindings::types;
use crate::error::Fault;

/// What each string and each list element costs beyond its bytes: about what a host
/// `String` or record costs to hold, so that empty elements are not free.
pub const ELEMENT_COST: u64 = 16;

/// The most elements strata reads from one kind of list, and what it is called in an
/// error.
pub trait Bound: Send + Sync + 'static {
    const MAX: usize;
    const WHAT: &'static str;
    /// What one element costs against the [`Budget`].
    const COST: u64 = ELEMENT_COST;
}

macro_rules! bounds {
    ($($name:ident = $max:expr, $what:literal $(, cost $cost:expr)?;)*) => {$(
        #[doc = concat!("At most ", stringify!($max), " ", $what, ".")]
        pub struct $name;
        impl Bound for $name {
            const MAX: usize = $max;
            const WHAT: &'static str = $what;
            $(const COST: u64 = $cost;)?
        }
    )*};
}

bounds! {
    Fields = 128, "configuration fields";
    Schemes = 16, "supported schemes";
    Requirements = 32, "stack requirements";
    Origins = 16, "extra origins";
    FieldErrors = 256, "validation errors";
    DirEntries = 65_536, "directory entries";
    Waves = 10_000, "waves";
    WaveSteps = 10_000, "scheduled steps";
    EnvVars = 64, "environment variables";
    Bytes = usize::MAX, "bytes", cost 1;
}

/// The budget of the call lifting on this thread (calls run on the thread that makes
/// them, and lift on it).
struct Budget {
    spent: u64,
    limit: u64,
}

thread_local! {
    static BUDGET: Cell<Option<Budget>> = const { Cell::new(None) };
}

/// Runs `f` (a call into a flavor) with a budget of `limit` for what it returns.
pub fn with_budget<T>(limit: u64, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<Budget>);
    impl Drop for Reset {
        fn drop(&mut self) {
            BUDGET.with(|b| b.set(self.0.take()));
        }
    }
    let _reset = Reset(BUDGET.with(|b| b.replace(Some(Budget { spent: 0, limit }))));
    f()
}

fn charge(n: u64) -> wasmtime::Result<()> {
    BUDGET.with(|cell| {
        let Some(mut b) = cell.take() else {
            return Ok(());
        };
        b.spent = b.spent.saturating_add(n);
        let over = (b.spent > b.limit).then_some(Fault::ReturnTooLarge {
            bytes: b.spent,
            limit: b.limit,
        });
        cell.set(Some(b));
        match over {
            Some(fault) => Err(wasmtime::Error::new(Exceeded(fault))),
            None => Ok(()),
        }
    })
}

/// The error a lift ends with when the answer breaks a bound.
#[derive(Debug)]
pub struct Exceeded(pub Fault);

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Exceeded {}

/// The bound a call's error broke, if that is why it failed.
pub fn exceeded(e: &wasmtime::Error) -> Option<Fault> {
    e.chain()
        .find_map(|c| c.downcast_ref::<Exceeded>())
        .map(|x| x.0.clone())
}

/// A string a flavor returned, paid for before it was copied.
pub struct BStr(pub String);

/// The length in bytes of a string from its canonical-ABI header: UTF-8 counts bytes,
/// UTF-16 code units (two bytes each; the top bit tags latin1+utf16).
fn string_cost(len: u32) -> u64 {
    const UTF16_TAG: u32 = 1 << 31;
    let units = (len & !UTF16_TAG) as u64;
    if len & UTF16_TAG != 0 {
        units * 2
    } else {
        units
    }
}

unsafe impl ComponentType for BStr {
    type Lower = <String as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <String as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <String as ComponentType>::typecheck(ty, types)
    }
}

unsafe impl Lift for BStr {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        // Checks the pointer and length against the guest's memory; copies nothing.
        <WasmStr as Lift>::linear_lift_from_flat(cx, ty, src)?;
        charge(string_cost(src[1].get_u32()) + ELEMENT_COST)?;
        Ok(BStr(<String as Lift>::linear_lift_from_flat(cx, ty, src)?))
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        <WasmStr as Lift>::linear_lift_from_memory(cx, ty, bytes)?;
        let len = u32::from_le_bytes(bytes[4..8].try_into().expect("invariant: 8-byte header"));
        charge(string_cost(len) + ELEMENT_COST)?;
        Ok(BStr(<String as Lift>::linear_lift_from_memory(
            cx, ty, bytes,
        )?))
    }
}

/// A list a flavor returned, its length checked against `B` and paid for before one
/// element was read.
pub struct BList<T, B: Bound>(pub Vec<T>, PhantomData<B>);

unsafe impl<T: ComponentType, B: Bound> ComponentType for BList<T, B> {
    type Lower = <Vec<T> as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <Vec<T> as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <Vec<T> as ComponentType>::typecheck(ty, types)
    }
}

fn check_list<T: Lift, B: Bound>(list: &WasmList<T>) -> wasmtime::Result<()> {
    if list.len() > B::MAX {
        return Err(wasmtime::Error::new(Exceeded(Fault::TooMany {
            what: B::WHAT.to_string(),
            count: list.len() as u64,
            limit: B::MAX as u64,
        })));
    }
    charge((list.len() as u64).saturating_mul(B::COST))
}

unsafe impl<T: Lift, B: Bound> Lift for BList<T, B> {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        let list = <WasmList<T> as Lift>::linear_lift_from_flat(cx, ty, src)?;
        check_list::<T, B>(&list)?;
        Ok(BList(
            T::linear_lift_list_from_memory(cx, &list)?,
            PhantomData,
        ))
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let list = <WasmList<T> as Lift>::linear_lift_from_memory(cx, ty, bytes)?;
        check_list::<T, B>(&list)?;
        Ok(BList(
            T::linear_lift_list_from_memory(cx, &list)?,
            PhantomData,
        ))
    }
}

// The WIT records that hold strings or lists, lifted through the bounded types. Field
// names are the WIT's; the enums are the bindings' (fixed size, nothing to bound).

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawFieldSpec {
    pub name: BStr,
    pub kind: types::FieldKind,
    pub required: bool,
    pub default: Option<BStr>,
    pub description: BStr,
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawRequirement {
    pub kind: types::RequirementKind,
    #[component(name = "component-type")]
    pub component_type: types::ComponentType,
    pub flavor: Option<BStr>,
    pub reason: BStr,
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawFlavorInfo {
    pub name: BStr,
    #[component(name = "component-type")]
    pub component_type: types::ComponentType,
    pub version: BStr,
    pub description: BStr,
    pub config: BList<RawFieldSpec, Fields>,
    #[component(name = "supported-schemes")]
    pub supported_schemes: BList<BStr, Schemes>,
    pub requirements: BList<RawRequirement, Requirements>,
    pub origins: BList<BStr, Origins>,
}

/// `flavor-info` as strata:flavor@0.1.0 had it: without `origins`.
#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawFlavorInfoV1 {
    pub name: BStr,
    #[component(name = "component-type")]
    pub component_type: types::ComponentType,
    pub version: BStr,
    pub description: BStr,
    pub config: BList<RawFieldSpec, Fields>,
    #[component(name = "supported-schemes")]
    pub supported_schemes: BList<BStr, Schemes>,
    pub requirements: BList<RawRequirement, Requirements>,
}

impl From<RawFlavorInfoV1> for RawFlavorInfo {
    fn from(v: RawFlavorInfoV1) -> Self {
        RawFlavorInfo {
            name: v.name,
            component_type: v.component_type,
            version: v.version,
            description: v.description,
            config: v.config,
            supported_schemes: v.supported_schemes,
            requirements: v.requirements,
            origins: BList(Vec::new(), PhantomData),
        }
    }
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawStatus {
    pub provisioned: bool,
    pub running: bool,
    pub detail: BStr,
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawFieldError {
    pub field: Option<BStr>,
    pub message: BStr,
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawLaunchReport {
    #[component(name = "orchestrator-run-id")]
    pub orchestrator_run_id: BStr,
    pub schedule: BList<BList<BStr, WaveSteps>, Waves>,
    pub detail: BStr,
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawDirEntry {
    pub name: BStr,
    #[component(name = "is-dir")]
    pub is_dir: bool,
}
