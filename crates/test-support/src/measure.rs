//! What the benches measure of a process and a store: resident memory from `/proc`, and the
//! bytes of a directory. Shared so that every bench counts the same way.

use std::path::Path;

/// A field of `/proc/<pid>/status` given in kB (`VmRSS:`, `VmHWM:`), in bytes; `pid` may be
/// `self`. 0 where /proc or the field is missing.
pub fn status_bytes(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb * 1024.0)
}

/// A process's resident memory (`VmRSS`) in bytes.
pub fn rss(pid: u32) -> f64 {
    status_bytes(&pid.to_string(), "VmRSS:")
}

/// CPU seconds a process has used so far, user and system (`/proc/<pid>/stat`, fields 14
/// and 15, in Linux's fixed 100 ticks a second); 0 where /proc is missing.
pub fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The command name (field 2) may hold spaces: count fields after its `)`.
            let rest = &s[s.rfind(')')? + 1..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

/// Bytes of the files under `dir`, recursively; 0 where it cannot be read.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
