//! Error output: one line `coracle: <what>: <why>` on stderr, and with `--log` a log line in
//! runc's text or JSON format (containerd reads the last JSON `msg` back as the error).

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where errors go besides stderr.
pub struct Logger {
    file: Option<PathBuf>,
    json: bool,
}

impl Logger {
    /// A logger for `--log FILE --log-format FORMAT`.
    pub fn new(file: Option<&Path>, format: &str) -> Self {
        Self {
            file: file.map(Path::to_path_buf),
            json: format == "json",
        }
    }

    /// Reports an error.
    pub fn error(&self, msg: &str) {
        let _ = writeln!(std::io::stderr(), "coracle: {msg}");
        let Some(path) = &self.file else { return };
        let time = coracle::state::now_rfc3339();
        let line = if self.json {
            serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
        } else {
            format!("time={time:?} level=error msg={msg:?}")
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
        if let Ok(mut f) = file {
            let _ = writeln!(f, "{line}");
        }
    }
}
