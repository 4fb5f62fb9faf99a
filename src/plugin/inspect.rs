//! `opsync plugin inspect`: what a component file is (world, ABI version, imports, exports, size,
//! sha256) without running it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::plugin::abi::{self, World};
use crate::plugin::cache::sha256_hex;
use crate::plugin::error::PluginError;
use crate::plugin::host::PluginHost;
use crate::plugin::source;

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

/// Reads and compiles (but never runs) the component at `path`, and applies exactly the checks
/// `host` applies when it loads a plugin: `problem` is what would stop the daemon loading it.
pub fn inspect(host: &PluginHost, path: &Path) -> Result<Report, PluginError> {
    let name = path.display().to_string();
    let bytes = source::read_file(&name, path)?;
    let component = host.compile(&name, &bytes)?;
    let engine = component.engine();
    let ty = component.component_type();
    let mut report = Report {
        path: path.to_path_buf(),
        size: bytes.len() as u64,
        sha256: sha256_hex(&bytes),
        world: None,
        abi_version: None,
        imports: ty.imports(engine).map(|(n, _)| n.to_string()).collect(),
        exports: ty.exports(engine).map(|(n, _)| n.to_string()).collect(),
        problem: None,
    };
    match abi::target(engine, &component) {
        Ok(target) => {
            report.world = Some(target.world);
            report.abi_version = Some(target.version);
        }
        Err(problem) => report.problem = Some(problem),
    }
    if report.problem.is_none()
        && let Err(e) = host.prepare(&name, &component, None)
    {
        report.problem = Some(e.to_string());
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
