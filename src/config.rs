//! The user's config file (`~/.fastcc/cache.json`, shape of the Python qcc): profiles and clusters.
//!
//! The file is kept as a `serde_json::Value` so that a rewrite keeps every field qcc does not know.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::url::BaseUrl;

/// One endpoint as the proxy uses it (validated).
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// 8 hex characters.
    pub id: String,
    pub url: BaseUrl,
    /// Empty: forward the client's own credentials untouched (the built-in default endpoint).
    pub api_key: String,
    pub weight: u32,
    pub priority: u32,
    pub enabled: bool,
    pub max_failures: u32,
    pub timeout_secs: u64,
    /// Extra trusted CA (PEM) for this endpoint, field `ca_file`.
    pub ca_file: Option<PathBuf>,
}

/// A cluster (a profile with `endpoints`) or a single-endpoint profile.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub name: String,
    pub endpoints: Vec<EndpointConfig>,
}

pub struct ConfigFile {
    path: PathBuf,
    root: serde_json::Value,
}

impl ConfigFile {
    /// A missing file is an empty config; an unreadable or corrupt one is `Error::BadFile`.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let _ = path;
        todo!()
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// `settings.default_profile`, when set and present.
    pub fn default_profile(&self) -> Option<&str> {
        let _ = &self.root;
        todo!()
    }
    /// The named profile as a cluster; unknown name is `Error::Invalid` naming it.
    pub fn cluster(&self, name: &str) -> Result<ClusterConfig> {
        let _ = name;
        todo!()
    }
}
