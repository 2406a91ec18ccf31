//! Benchmark: the cost of [`ParamSelector::matches`], which a regulariser's penalty calls for
//! every parameter at every update.
//!
//! ```text
//! cargo bench -p fire --bench select
//! ```
//! Prints nanoseconds per call and microseconds per pass over a 64-wide SAC's 12 parameter
//! names, with the exclude globs Parseval uses there (the output layers).

use std::time::Instant;

use fire::ParamSelector;

const SAC_PARAMS: [&str; 12] = [
    "actor.fc1.weight",
    "actor.fc1.bias",
    "actor.fc2.weight",
    "actor.fc2.bias",
    "actor.mean.weight",
    "actor.mean.bias",
    "critic.fc1.weight",
    "critic.fc1.bias",
    "critic.fc2.weight",
    "critic.fc2.bias",
    "critic.out.weight",
    "critic.out.bias",
];

fn main() {
    let parseval = ["actor.mean.*", "actor.log_std.*", "critic.out.*"]
        .iter()
        .try_fold(ParamSelector::all(), |s, g| s.exclude(g))
        .expect("valid globs");
    let passes = 200_000;
    let mut selected = 0usize;
    let start = Instant::now();
    for _ in 0..passes {
        for name in SAC_PARAMS {
            selected += usize::from(parseval.matches(name, &[64, 64]));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(selected, passes * 8, "the output layers are excluded");
    println!(
        "| ParamSelector::matches, 3 exclude globs | {:.1} ns per call | {:.2} us per 12-parameter pass |",
        secs / (passes * SAC_PARAMS.len()) as f64 * 1e9,
        secs / passes as f64 * 1e6
    );
}
