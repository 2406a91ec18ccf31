//! Integration tests of the `fire` crate and its command-line tool (one test binary).

mod cli;
mod interventions;
mod orthogonalize;
mod util;
