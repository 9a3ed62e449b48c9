//! `qcc dashboard [--open]`: where the running proxy's page is, and how to sign in to it.

use std::path::Path;

use serde_json::Value;

use crate::error::Result;

/// `qcc dashboard [--open]`: the running proxy's page, and how to sign in when it needs a key.
/// A key is never put in the URL (it would land in the browser's history and the shell's); with
/// `--open` the page opens in a browser when one can be started (`$BROWSER`, `xdg-open`, `open`).
pub fn run(home: &Path, open: bool) -> Result<()> {
    let (info, s) = super::control::call(home, "GET", "/_qcc/status")?;
    let url = format!("{}/_qcc/", info.base_url());
    println!("{url}");
    let access_key = s.pointer("/settings/access_key").and_then(Value::as_bool).unwrap_or(false);
    let keys = s["keys"].as_array().map_or(0, |rows| rows.iter().filter(|r| r["name"] != "(access key)").count());
    let public = !matches!(info.local_host(), "127.0.0.1" | "::1" | "localhost");
    if access_key || keys > 0 || public {
        let with = match (access_key, keys > 0) {
            (true, true) => format!("the access key ({}) or an admin client key", home.join("access_key").display()),
            (true, false) => format!("the access key ({})", home.join("access_key").display()),
            _ => "an admin client key (`qcc key add NAME --admin`)".to_string(),
        };
        println!("sign in: the page asks for a key once; give it {with}");
    } else {
        println!("no sign-in: the page works for anyone on this machine (no key is configured)");
    }
    if open {
        let tried: Vec<String> =
            std::env::var("BROWSER").ok().into_iter().chain(["xdg-open".into(), "open".into()]).collect();
        let opened = tried.iter().any(|b| {
            std::process::Command::new(b)
                .arg(&url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|st| st.success())
        });
        if !opened {
            eprintln!("qcc: no browser could be started here (tried {}); open the address above", tried.join(", "));
        }
    }
    Ok(())
}
