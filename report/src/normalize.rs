//! Score normalisation, so that tasks can be aggregated.
//!
//! - Atari: human-normalised score `(R - random) / (human - random)`. The random and human scores
//!   are DeepMind's standard Atari-57 table as published in DQN Zoo
//!   (`dqn_zoo/atari_data.py`, github.com/google-deepmind/dqn_zoo, Apache-2.0; the same numbers
//!   rliable's Atari data uses): evaluation returns with up to 30 no-op starts, random agent and
//!   professional human tester.
//! - HumanoidBench: `(R - random) / (bar - random)` with the success bars and random-policy returns
//!   of the FIRE paper's protocol (`FIRE.md` section 3): walk 700 / 2.377, stand 800 / 10.545,
//!   run 700 / 2.02, balance_simple 800 / 9.391.
//! - Other tasks (classic control) have no standard normaliser and are left out of aggregates.

use crate::runs::Domain;

/// `(game in snake_case, random, human)`, from DQN Zoo's `atari_data.py`.
const ATARI: [(&str, f64, f64); 57] = [
    ("alien", 227.8, 7127.7),
    ("amidar", 5.8, 1719.5),
    ("assault", 222.4, 742.0),
    ("asterix", 210.0, 8503.3),
    ("asteroids", 719.1, 47388.7),
    ("atlantis", 12850.0, 29028.1),
    ("bank_heist", 14.2, 753.1),
    ("battle_zone", 2360.0, 37187.5),
    ("beam_rider", 363.9, 16926.5),
    ("berzerk", 123.7, 2630.4),
    ("bowling", 23.1, 160.7),
    ("boxing", 0.1, 12.1),
    ("breakout", 1.7, 30.5),
    ("centipede", 2090.9, 12017.0),
    ("chopper_command", 811.0, 7387.8),
    ("crazy_climber", 10780.5, 35829.4),
    ("defender", 2874.5, 18688.9),
    ("demon_attack", 152.1, 1971.0),
    ("double_dunk", -18.6, -16.4),
    ("enduro", 0.0, 860.5),
    ("fishing_derby", -91.7, -38.7),
    ("freeway", 0.0, 29.6),
    ("frostbite", 65.2, 4334.7),
    ("gopher", 257.6, 2412.5),
    ("gravitar", 173.0, 3351.4),
    ("hero", 1027.0, 30826.4),
    ("ice_hockey", -11.2, 0.9),
    ("jamesbond", 29.0, 302.8),
    ("kangaroo", 52.0, 3035.0),
    ("krull", 1598.0, 2665.5),
    ("kung_fu_master", 258.5, 22736.3),
    ("montezuma_revenge", 0.0, 4753.3),
    ("ms_pacman", 307.3, 6951.6),
    ("name_this_game", 2292.3, 8049.0),
    ("phoenix", 761.4, 7242.6),
    ("pitfall", -229.4, 6463.7),
    ("pong", -20.7, 14.6),
    ("private_eye", 24.9, 69571.3),
    ("qbert", 163.9, 13455.0),
    ("riverraid", 1338.5, 17118.0),
    ("road_runner", 11.5, 7845.0),
    ("robotank", 2.2, 11.9),
    ("seaquest", 68.4, 42054.7),
    ("skiing", -17098.1, -4336.9),
    ("solaris", 1236.3, 12326.7),
    ("space_invaders", 148.0, 1668.7),
    ("star_gunner", 664.0, 10250.0),
    ("surround", -10.0, 6.5),
    ("tennis", -23.8, -8.3),
    ("time_pilot", 3568.0, 5229.2),
    ("tutankham", 11.4, 167.6),
    ("up_n_down", 533.4, 11693.2),
    ("venture", 0.0, 1187.5),
    ("video_pinball", 16256.9, 17667.9),
    ("wizard_of_wor", 563.5, 4756.5),
    ("yars_revenge", 3092.9, 54576.9),
    ("zaxxon", 32.5, 9173.3),
];

/// `(task, success bar, random-policy return)` for HumanoidBench, from FIRE.md section 3.
const HUMANOID: [(&str, f64, f64); 4] = [
    ("walk", 700.0, 2.377),
    ("stand", 800.0, 10.545),
    ("run", 700.0, 2.02),
    ("balance_simple", 800.0, 9.391),
];

fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A linear map `score -> (score - zero) / (one - zero)` for one task.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalizer {
    /// The score that maps to 0 (random play).
    pub zero: f64,
    /// The score that maps to 1 (human, or the success bar).
    pub one: f64,
}

impl Normalizer {
    pub fn apply(&self, score: f64) -> f64 {
        (score - self.zero) / (self.one - self.zero)
    }
}

/// The normaliser of a task, if the domain has a standard one and knows the task.
/// Atari games match in any spelling (`BeamRider`, `beam_rider`); HumanoidBench tasks as
/// `h1-walk-v0` or `walk`.
pub fn normalizer(domain: Domain, task: &str) -> Option<Normalizer> {
    match domain {
        Domain::Atari => {
            let key = squash(task);
            ATARI
                .iter()
                .find(|(g, _, _)| squash(g) == key)
                .map(|&(_, random, human)| Normalizer {
                    zero: random,
                    one: human,
                })
        }
        Domain::HumanoidBench => {
            let t = task.strip_prefix("h1-").unwrap_or(task);
            let t = match t.rfind("-v") {
                Some(i) => &t[..i],
                None => t,
            };
            HUMANOID
                .iter()
                .find(|(n, _, _)| *n == t)
                .map(|&(_, bar, random)| Normalizer {
                    zero: random,
                    one: bar,
                })
        }
        Domain::Classic | Domain::Minatar => None,
    }
}

/// What a normalised score of the domain is called in tables and figures.
pub fn normalized_label(domain: Domain) -> &'static str {
    match domain {
        Domain::Atari => "human-normalised score",
        Domain::HumanoidBench => "success-normalised score",
        Domain::Classic | Domain::Minatar => "score",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atari_names_and_values() {
        let n = normalizer(Domain::Atari, "BeamRider").unwrap();
        assert_eq!((n.zero, n.one), (363.9, 16926.5));
        let n = normalizer(Domain::Atari, "DemonAttack").unwrap();
        assert!((n.apply(1971.0) - 1.0).abs() < 1e-12 && n.apply(152.1) == 0.0);
        assert!(normalizer(Domain::Atari, "UpNDown").is_some());
        assert!(normalizer(Domain::Atari, "NotAGame").is_none());
    }

    #[test]
    fn humanoid_bars() {
        let n = normalizer(Domain::HumanoidBench, "h1-walk-v0").unwrap();
        assert_eq!((n.zero, n.one), (2.377, 700.0));
        let n = normalizer(Domain::HumanoidBench, "h1-balance_simple-v0").unwrap();
        assert!((n.apply(800.0) - 1.0).abs() < 1e-12);
        assert!(normalizer(Domain::Classic, "CartPole-v1").is_none());
    }
}
