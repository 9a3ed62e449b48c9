//! Wall-clock timestamps in the shape the Python qcc wrote: "2025-10-17T10:05:00.123456" (UTC).

use std::time::SystemTime;

pub fn iso(t: SystemTime) -> String {
    let _ = t;
    todo!()
}
