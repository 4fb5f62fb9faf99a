//! The plugin ABI versions the host speaks (one module per frozen `wit/<version>/` folder), and
//! the version-independent calls the rest of the host makes through them.

mod shared;
pub mod v0_1_0;
pub mod v0_2_0;

use std::fmt;
use std::str::FromStr;

use wasmtime::Engine;
use wasmtime::Store;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre, Linker};

use crate::plugin::error::Failure;
use crate::plugin::event::{
    AuditRecord, Found, ItemEvent, ItemRef, NewValue, Receipt, Rotation, RotationStep,
};
use crate::plugin::state::HostState;

/// The WIT package every ABI version belongs to.
pub const PACKAGE: &str = "opsync:plugin";

/// ABI versions this host can run, newest first.
pub const VERSIONS: &[&str] = &["0.2.0", "0.1.0"];

/// What kind of plugin a component is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum World {
    Destination,
    Rotator,
    AuditSink,
}

impl World {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Destination => "destination",
            Self::Rotator => "rotator",
            Self::AuditSink => "audit-sink",
        }
    }

    /// The world whose exports a component has: `deliver` for a destination, `ingest` for an
    /// audit sink, the rotation steps for a rotator.
    pub fn from_exports<'a>(exports: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let names: Vec<&str> = exports.into_iter().collect();
        let has = |n: &str| names.contains(&n);
        if has("deliver") {
            Some(Self::Destination)
        } else if has("ingest") {
            Some(Self::AuditSink)
        } else if ["create", "set", "test", "finish"].iter().all(|n| has(n)) {
            Some(Self::Rotator)
        } else {
            None
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for World {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "destination" => Ok(Self::Destination),
            "rotator" => Ok(Self::Rotator),
            "audit-sink" => Ok(Self::AuditSink),
            other => Err(format!(
                "`{other}` is not a plugin world (destination, rotator, audit-sink)"
            )),
        }
    }
}

/// The world and ABI version a compiled component targets, read from its types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub world: World,
    /// `0.1.0`, from the versioned `opsync:plugin/...@x.y.z` imports; a component that imports
    /// none of them runs under the newest version.
    pub version: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// Reads a component's imports and exports and names its world and ABI version.
pub fn target(engine: &Engine, component: &Component) -> Result<Target, String> {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty
        .exports(engine)
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentFunc(_)))
        .map(|(n, _)| n.to_string())
        .collect();
    let world = World::from_exports(exports.iter().map(String::as_str)).ok_or_else(|| {
        format!(
            "exports [{}] match no plugin world (destination: deliver; audit-sink: ingest; \
             rotator: create, set, test, finish)",
            exports.join(", ")
        )
    })?;
    let mut versions: Vec<&str> = imports
        .iter()
        .filter_map(|i| i.strip_prefix(PACKAGE)?.split_once('@').map(|(_, v)| v))
        .collect();
    versions.sort_unstable();
    versions.dedup();
    let version = match versions.as_slice() {
        [] => VERSIONS[0].to_string(),
        [one] if VERSIONS.contains(one) => one.to_string(),
        [one] => {
            return Err(format!(
                "targets ABI {PACKAGE}@{one}; this opsync speaks {}",
                VERSIONS.join(", ")
            ));
        }
        many => return Err(format!("mixes ABI versions {}", many.join(", "))),
    };
    Ok(Target {
        world,
        version,
        imports,
        exports,
    })
}

/// Adds every ABI version's interfaces to the linker.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v0_1_0::add_to_linker(linker)?;
    v0_2_0::add_to_linker(linker)
}

/// A plugin's pre-instantiated component, typed by its ABI version and world.
pub enum Pre {
    V0_1(v0_1_0::Pre),
    V0_2(v0_2_0::Pre),
}

impl Pre {
    /// Type-checks the component's exports against `target`'s world in its ABI version.
    pub fn new(target: &Target, pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        match target.version.as_str() {
            "0.1.0" => Ok(Self::V0_1(v0_1_0::Pre::new(target.world, pre)?)),
            "0.2.0" => Ok(Self::V0_2(v0_2_0::Pre::new(target.world, pre)?)),
            other => Err(wasmtime::Error::msg(format!("no binding for ABI {other}"))),
        }
    }

    /// Whether the component takes a batch in one call and can read its destination back (ABI
    /// 0.2.0 and later); for 0.1.0 the host delivers a batch one call per event.
    pub fn batches(&self) -> bool {
        matches!(self, Self::V0_2(_))
    }

    /// Instantiates into `store` and makes one call.
    pub async fn call(
        &self,
        store: &mut Store<HostState>,
        call: Call<'_>,
    ) -> wasmtime::Result<Result<Outcome, Failure>> {
        match self {
            Self::V0_1(pre) => pre.call(store, call).await,
            Self::V0_2(pre) => pre.call(store, call).await,
        }
    }
}

/// One call into a plugin.
#[derive(Clone, Copy, Debug)]
pub enum Call<'a> {
    Validate,
    Deliver(&'a ItemEvent),
    DeliverBatch(&'a [ItemEvent]),
    ReadBack(&'a ItemRef),
    Rotate(RotationStep, &'a Rotation),
    Ingest(&'a [AuditRecord]),
}

impl Call<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Deliver(_) => "deliver",
            Self::DeliverBatch(_) => "deliver-batch",
            Self::ReadBack(_) => "read-back",
            Self::Rotate(RotationStep::Create, _) => "create",
            Self::Rotate(RotationStep::Set, _) => "set",
            Self::Rotate(RotationStep::Test, _) => "test",
            Self::Rotate(RotationStep::Finish, _) => "finish",
            Self::Ingest(_) => "ingest",
        }
    }

    /// The world that exports this call; `None` for calls every world has.
    pub fn world(&self) -> Option<World> {
        match self {
            Self::Validate => None,
            Self::Deliver(_) | Self::DeliverBatch(_) | Self::ReadBack(_) => {
                Some(World::Destination)
            }
            Self::Rotate(..) => Some(World::Rotator),
            Self::Ingest(_) => Some(World::AuditSink),
        }
    }
}

/// A [`Call`] that owns its arguments, to move it to another thread.
#[derive(Clone, Debug)]
pub enum OwnedCall {
    Validate,
    Deliver(ItemEvent),
    DeliverBatch(Vec<ItemEvent>),
    ReadBack(ItemRef),
    Rotate(RotationStep, Rotation),
    Ingest(Vec<AuditRecord>),
}

impl OwnedCall {
    pub fn as_call(&self) -> Call<'_> {
        match self {
            Self::Validate => Call::Validate,
            Self::Deliver(event) => Call::Deliver(event),
            Self::DeliverBatch(events) => Call::DeliverBatch(events),
            Self::ReadBack(item) => Call::ReadBack(item),
            Self::Rotate(step, rotation) => Call::Rotate(*step, rotation),
            Self::Ingest(batch) => Call::Ingest(batch),
        }
    }
}

impl From<Call<'_>> for OwnedCall {
    fn from(call: Call<'_>) -> Self {
        match call {
            Call::Validate => Self::Validate,
            Call::Deliver(event) => Self::Deliver(event.clone()),
            Call::DeliverBatch(events) => Self::DeliverBatch(events.to_vec()),
            Call::ReadBack(item) => Self::ReadBack(item.clone()),
            Call::Rotate(step, rotation) => Self::Rotate(step, rotation.clone()),
            Call::Ingest(batch) => Self::Ingest(batch.to_vec()),
        }
    }
}

/// What a successful call returned.
#[derive(Debug)]
pub enum Outcome {
    Done,
    Receipt(Receipt),
    /// A batch's results, one per event, in order.
    Receipts(Vec<Result<Receipt, Failure>>),
    NewValues(Vec<NewValue>),
    Found(Found),
}
