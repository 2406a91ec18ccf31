//! Small pieces shared by the workspace's command-line tools (feature `cli`).

use clap::Parser;

/// Parses the command line. `--help` and `--version` print as usual and exit 0; a bad argument
/// prints one line, `BIN: error: ... (see BIN --help)`, and exits 2, instead of clap's
/// multi-line usage block.
pub fn parse_or_exit<T: Parser>(bin: &str) -> T {
    match T::try_parse() {
        Ok(args) => args,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                err.exit();
            }
            let rendered = err.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments")
                .trim()
                .trim_start_matches("error: ");
            eprintln!("{bin}: error: {first} (see {bin} --help)");
            std::process::exit(2);
        }
    }
}

/// Prints `BIN: error: CAUSE: CAUSE...` on one line and returns a failing exit code.
pub fn report_error(bin: &str, err: &anyhow::Error) -> std::process::ExitCode {
    let line = format!("{err:#}").replace('\n', " ");
    eprintln!("{bin}: error: {line}");
    std::process::ExitCode::FAILURE
}
