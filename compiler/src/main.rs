//! The `lowbit` binary: the command line of [`lowbit_compiler::cli`] on the process's
//! arguments and standard streams.

fn main() {
    // Lossy, so that a non-UTF-8 argument is an error message, not a panic.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let code =
        lowbit_compiler::cli::main_with_args(&args, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}
