//! Reads policy and cluster documents from files: one YAML file, or every `*.yaml`/`*.yml`
//! in a directory (sorted, not recursive).

use std::path::{Path, PathBuf};

use crate::domain::policy::{Config, ConfigError};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("reading {path} failed")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// One or more documents are invalid (each error names file, document and field).
    #[error("{} problem(s) in the configuration:\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigError>),
}

/// Loads the configuration at `path` (a file or a directory).
///
/// # Errors
/// [`LoadError::Read`] when a file cannot be read; [`LoadError::Invalid`] with every problem.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source| LoadError::Read { path, source }
    };
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(read_err(path))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_owned()]
    };
    let mut texts = Vec::with_capacity(files.len());
    for file in &files {
        texts.push((file.display().to_string(), std::fs::read_to_string(file).map_err(read_err(file))?));
    }
    Config::from_sources(texts.iter().map(|(n, t)| (n.as_str(), t.as_str()))).map_err(LoadError::Invalid)
}
