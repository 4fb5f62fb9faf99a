//! `opsync plugin inspect`: what a component file is (world, ABI version, imports, exports, size,
//! sha256) without running it.

use std::fmt;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::plugin::abi::{self, World};
use crate::plugin::cache::sha256_hex;
use crate::plugin::error::PluginError;

/// What `inspect` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// The plugin world, when the component matches one.
    pub world: Option<World>,
    /// The `opsync:plugin` ABI version it targets.
    pub abi_version: Option<String>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// Why the component is not a usable plugin, if it is not.
    pub problem: Option<String>,
}

/// Reads and compiles (but never runs) the component at `path`.
pub fn inspect(path: &Path) -> Result<Report, PluginError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| PluginError::Read {
        plugin: name.clone(),
        path: path.to_path_buf(),
        source,
    })?;
    let engine = Engine::default();
    let component = Component::new(&engine, &bytes).map_err(|e| PluginError::Invalid {
        plugin: name,
        reason: format!("not a WebAssembly component: {e:#}"),
    })?;
    let mut report = Report {
        path: path.to_path_buf(),
        size: bytes.len() as u64,
        sha256: sha256_hex(&bytes),
        world: None,
        abi_version: None,
        imports: Vec::new(),
        exports: Vec::new(),
        problem: None,
    };
    let ty = component.component_type();
    report.imports = ty.imports(&engine).map(|(n, _)| n.to_string()).collect();
    report.exports = ty.exports(&engine).map(|(n, _)| n.to_string()).collect();
    match abi::target(&engine, &component) {
        Ok(target) => {
            report.world = Some(target.world);
            report.abi_version = Some(target.version);
        }
        Err(problem) => report.problem = Some(problem),
    }
    Ok(report)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "file:    {}", self.path.display())?;
        writeln!(f, "size:    {} bytes", self.size)?;
        writeln!(f, "sha256:  {}", self.sha256)?;
        match (&self.world, &self.abi_version) {
            (Some(world), Some(version)) => {
                writeln!(f, "world:   {world} ({}@{version})", abi::PACKAGE)?
            }
            _ => writeln!(f, "world:   none")?,
        }
        if let Some(problem) = &self.problem {
            writeln!(f, "problem: {problem}")?;
        }
        writeln!(f, "imports:")?;
        for import in &self.imports {
            writeln!(f, "  {import}")?;
        }
        writeln!(f, "exports:")?;
        for export in &self.exports {
            writeln!(f, "  {export}")?;
        }
        Ok(())
    }
}
