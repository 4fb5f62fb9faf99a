//! The plugin ABI versions the host speaks (one module per frozen `wit/<version>/` folder), and
//! the version-independent calls the rest of the host makes through them.

pub mod v0_1_0;

use std::fmt;
use std::str::FromStr;

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};

use crate::connect::model::ApiRequest;
use crate::plugin::event::{ItemEvent, NewValue, Receipt, Rotation, RotationStep};
use crate::plugin::state::HostState;

/// The WIT package every ABI version belongs to.
pub const PACKAGE: &str = "opsync:plugin";

/// ABI versions this host can run, newest first.
pub const VERSIONS: &[&str] = &["0.1.0"];

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
    v0_1_0::add_to_linker(linker)
}

/// One call into a plugin.
#[derive(Clone, Copy, Debug)]
pub enum Call<'a> {
    Validate,
    Deliver(&'a ItemEvent),
    Rotate(RotationStep, &'a Rotation),
    Ingest(&'a [ApiRequest]),
}

impl Call<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Deliver(_) => "deliver",
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
            Self::Deliver(_) => Some(World::Destination),
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
    Rotate(RotationStep, Rotation),
    Ingest(Vec<ApiRequest>),
}

impl OwnedCall {
    pub fn as_call(&self) -> Call<'_> {
        match self {
            Self::Validate => Call::Validate,
            Self::Deliver(event) => Call::Deliver(event),
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
    NewValues(Vec<NewValue>),
}
