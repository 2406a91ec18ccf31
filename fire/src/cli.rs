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
            let first = first_error_line(&err.render().to_string());
            eprintln!("{bin}: error: {first} (see {bin} --help)");
            std::process::exit(2);
        }
    }
}

/// The gist of clap's rendered error on one line, without the `error: ` tag and usage block.
///
/// Clap puts some of the message on the lines after the first: "the following required
/// arguments were not provided:" is followed by one indented line per missing argument.
/// A first line ending in a colon is therefore joined with the indented lines that follow it,
/// so the one line still says *what* is missing.
fn first_error_line(rendered: &str) -> String {
    let mut lines = rendered.lines().skip_while(|l| l.trim().is_empty());
    let first = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim()
        .trim_start_matches("error: ");
    if !first.ends_with(':') {
        return first.to_owned();
    }
    let details: Vec<&str> = lines
        .take_while(|l| l.starts_with(char::is_whitespace) && !l.trim().is_empty())
        .map(str::trim)
        .collect();
    if details.is_empty() {
        first.trim_end_matches(':').to_owned()
    } else {
        format!("{first} {}", details.join(", "))
    }
}

/// Prints `BIN: error: CAUSE: CAUSE...` on one line and returns a failing exit code.
pub fn report_error(bin: &str, err: &anyhow::Error) -> std::process::ExitCode {
    eprintln!("{bin}: error: {}", error_line(err));
    std::process::ExitCode::FAILURE
}

/// An error and its causes on one line, `outer: cause: root cause`.
///
/// A cause whose text is already part of the line is left out. Error types that name their
/// source in their own message (thiserror's `#[error("{path}: {source}")]` with a `source`
/// field) would otherwise print it twice, as in
/// `x: Not a directory (os error 20): Not a directory (os error 20)`.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string().replace('\n', " ");
        let text = text.trim();
        if line.contains(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Io {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "Not a directory");
        let err = anyhow::Error::new(Io {
            path: "/etc/passwd/x".into(),
            source: io,
        });
        assert_eq!(error_line(&err), "/etc/passwd/x: Not a directory");
        // Context that does not repeat its cause keeps the whole chain.
        let err = err.context("reading the checkpoint");
        assert_eq!(
            error_line(&err),
            "reading the checkpoint: /etc/passwd/x: Not a directory"
        );
        let plain = anyhow::anyhow!("first\nsecond").context("outer");
        assert_eq!(error_line(&plain), "outer: first second");
    }

    #[test]
    fn missing_arguments_are_named() {
        let rendered = "error: the following required arguments were not provided:\n  \
                        <INPUT>\n  <OUTPUT>\n\nUsage: fire apply <INPUT> <OUTPUT>\n\n\
                        For more information, try '--help'.\n";
        assert_eq!(
            first_error_line(rendered),
            "the following required arguments were not provided: <INPUT>, <OUTPUT>"
        );
        let rendered = "error: unexpected argument '--x' found\n\n  tip: ...\n\nUsage: fire\n";
        assert_eq!(
            first_error_line(rendered),
            "unexpected argument '--x' found"
        );
        assert_eq!(first_error_line(""), "invalid arguments");
    }
}
