//! Reading settings from the environment: the helpers every variable's parser shares.

use crate::error::Error;

/// Reads a boolean setting: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case.
pub(crate) fn parse_bool(var: &str, v: &str) -> Result<bool, Error> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::env(
            var,
            v,
            "one of true, false, 1, 0, yes, no, on, off",
        )),
    }
}
