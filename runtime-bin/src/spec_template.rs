//! `coracle spec`: the template config.json, as `runc spec` writes it.

use std::path::Path;

use crate::{CliError, Result};

/// Writes `<bundle>/config.json`, refusing to overwrite one.
pub fn write(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(CliError(format!(
            "{}: file exists; remove it first",
            path.display()
        )));
    }
    let text = serde_json::to_string_pretty(&coracle::spec::template(rootless))?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| CliError(format!("write {}: {e}", path.display())))
}
