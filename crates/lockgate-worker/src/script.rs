//! The shell scripts that run an action's commands: each command in turn in one `/bin/sh`
//! (so a variable one command sets is seen by the next), the number of the running command
//! written to a step file (so a failure can name it), and after the last command the values of
//! the variables the action exports, written NUL-separated to an exports file.

use std::collections::BTreeMap;

/// Quotes `text` for the shell: single quotes, with embedded ones closed and reopened.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Whether `name` can be a shell variable.
pub(crate) fn is_shell_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The preamble every script starts with: the step marker.
pub(crate) const PREAMBLE: &str = "\
__lockgate_step() {
    printf '%s' \"$1\" > \"$LOCKGATE_STEP_FILE\"
    printf '[Container] Running command %s\\n' \"$2\"
}
";

/// Appends command number `step` (1-based), then a check that runs `on_failure` (shell text)
/// when it exits non-zero.
pub(crate) fn push_command(script: &mut String, step: usize, command: &str, on_failure: &str) {
    script.push_str(&format!("__lockgate_step {step} {}\n", quote(command)));
    script.push_str(command);
    script.push_str("\n__lockgate_rc=$?\n");
    script.push_str(&format!(
        "if [ \"$__lockgate_rc\" -ne 0 ]; then {on_failure}; fi\n"
    ));
}

/// Appends the writing of `names` (those that are set) to the exports file.
pub(crate) fn push_exports(script: &mut String, names: &[String]) {
    script.push_str("printf '' > \"$LOCKGATE_EXPORTS_FILE\"\n");
    for name in names.iter().filter(|n| is_shell_name(n)) {
        script.push_str(&format!(
            "if [ \"${{{name}+set}}\" = set ]; then printf '%s=%s\\0' {name} \"${name}\" >> \"$LOCKGATE_EXPORTS_FILE\"; fi\n"
        ));
    }
}

/// The script of a Commands action: `commands` in order, stopping at the first that fails
/// (the script exits with its status), then the exports.
pub(crate) fn commands(commands: &[String], exports: &[String]) -> String {
    let mut script = String::from(PREAMBLE);
    for (i, command) in commands.iter().enumerate() {
        push_command(&mut script, i + 1, command, "exit \"$__lockgate_rc\"");
    }
    script.push_str("__lockgate_step 0 ''\n");
    push_exports(&mut script, exports);
    script
}

/// Reads an exports file: `NAME=value` entries separated by NUL.
pub(crate) fn read_exports(bytes: &[u8]) -> BTreeMap<String, String> {
    bytes
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let text = String::from_utf8_lossy(entry);
            let (name, value) = text.split_once('=')?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert!(is_shell_name("VERSION") && is_shell_name("_a1"));
        assert!(!is_shell_name("1a") && !is_shell_name("a-b") && !is_shell_name(""));
    }

    #[test]
    fn exports_read_back_with_newlines_and_equals_signs() {
        let map = read_exports(b"A=1\0B=x=y\nz\0");
        assert_eq!(map.get("A").map(String::as_str), Some("1"));
        assert_eq!(map.get("B").map(String::as_str), Some("x=y\nz"));
    }
}
