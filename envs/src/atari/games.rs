//! Game names as users type them, and the ROM files behind them.
//!
//! ROMs come from the PyPI `ale-py` wheel, which `setup.sh` installs and links to
//! `~/.cache/fire-rl/roms` (the cache root follows `FIRE_RL_CACHE` and `XDG_CACHE_HOME`).
//! `ALE_ROM_DIR` overrides the directory.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The environment variable that overrides the ROM directory.
pub const ROM_DIR_VAR: &str = "ALE_ROM_DIR";

/// The games ALE 0.6.0 has settings for (its `rom()` names); other ROMs make it exit.
const SUPPORTED: &[&str] = &[
    "adventure",
    "air_raid",
    "alien",
    "amidar",
    "assault",
    "asterix",
    "asteroids",
    "atlantis",
    "bank_heist",
    "battle_zone",
    "beam_rider",
    "berzerk",
    "bowling",
    "boxing",
    "breakout",
    "carnival",
    "centipede",
    "chopper_command",
    "crazy_climber",
    "defender",
    "demon_attack",
    "donkey_kong",
    "double_dunk",
    "elevator_action",
    "enduro",
    "fishing_derby",
    "freeway",
    "frogger",
    "frostbite",
    "galaxian",
    "gopher",
    "gravitar",
    "hero",
    "ice_hockey",
    "jamesbond",
    "journey_escape",
    "kaboom",
    "kangaroo",
    "keystone_kapers",
    "king_kong",
    "koolaid",
    "krull",
    "kung_fu_master",
    "laser_gates",
    "lost_luggage",
    "montezuma_revenge",
    "mr_do",
    "ms_pacman",
    "name_this_game",
    "phoenix",
    "pitfall",
    "pong",
    "pooyan",
    "private_eye",
    "qbert",
    "riverraid",
    "road_runner",
    "robotank",
    "seaquest",
    "sir_lancelot",
    "skiing",
    "solaris",
    "space_invaders",
    "star_gunner",
    "tennis",
    "tetris",
    "time_pilot",
    "trondead",
    "turmoil",
    "tutankham",
    "up_n_down",
    "venture",
    "video_pinball",
    "wizard_of_wor",
    "yars_revenge",
    "zaxxon",
];

/// Games whose ROM names do not follow from their CamelCase names.
const ALIASES: &[(&str, &str)] = &[
    ("james_bond", "jamesbond"),
    ("river_raid", "riverraid"),
    ("robo_tank", "robotank"),
    ("q_bert", "qbert"),
];

/// The ROM directory: `ALE_ROM_DIR` if set, else the cache `setup.sh` fills.
pub fn rom_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(ROM_DIR_VAR) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("FIRE_RL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("fire-rl")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/fire-rl")))
        .unwrap_or_else(|| PathBuf::from(".cache/fire-rl"));
    cache.join("roms")
}

/// `Breakout`, `BeamRider`, `MsPacman`, `breakout`, `beam_rider`, `ALE/Breakout-v5`,
/// `BreakoutNoFrameskip-v4` -> the ROM name (`breakout`, `beam_rider`, `ms_pacman`).
pub fn rom_name(game: &str) -> String {
    let mut name = game.trim();
    if let Some(rest) = name.strip_prefix("ALE/") {
        name = rest;
    }
    if let Some((base, version)) = name.rsplit_once("-v") {
        if version.chars().all(|c| c.is_ascii_digit()) {
            name = base;
        }
    }
    for suffix in ["NoFrameskip", "Deterministic"] {
        if let Some(base) = name.strip_suffix(suffix) {
            name = base;
        }
    }
    let mut snake = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && !snake.ends_with('_') {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    let snake = snake.replace(['-', ' '], "_");
    ALIASES
        .iter()
        .find(|(from, _)| *from == snake)
        .map_or(snake, |(_, to)| (*to).to_owned())
}

/// The CamelCase name users see for a ROM name (`beam_rider` -> `BeamRider`).
pub fn display_name(rom: &str) -> String {
    rom.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Games that have a ROM in `dir` and that ALE 0.6.0 supports, as display names, sorted.
pub fn available_games(dir: &Path) -> Vec<String> {
    let mut games: Vec<String> = SUPPORTED
        .iter()
        .filter(|rom| dir.join(format!("{rom}.bin")).is_file())
        .map(|rom| display_name(rom))
        .collect();
    games.sort();
    games
}

/// Finds and checks the ROM for `game` in `dir`: everything ALE would `exit(1)` on is an error.
pub fn locate_rom(game: &str, dir: &Path) -> Result<PathBuf> {
    let rom = rom_name(game);
    if !dir.is_dir() {
        return Err(Error::RomDir {
            dir: dir.to_owned(),
            reason: format!("no such directory (run ./setup.sh, or set {ROM_DIR_VAR})"),
        });
    }
    let available = available_games(dir);
    if !SUPPORTED.contains(&rom.as_str()) {
        return Err(Error::UnknownGame {
            game: game.to_owned(),
            available,
        });
    }
    let path = dir.join(format!("{rom}.bin"));
    let meta = std::fs::metadata(&path).map_err(|_| Error::RomMissing {
        game: display_name(&rom),
        path: path.clone(),
        available: available.clone(),
    })?;
    // 2600 cartridges are 2 KiB to 64 KiB (bank-switched); anything else is not a ROM.
    if !meta.is_file() || !(1024..=512 * 1024).contains(&meta.len()) {
        return Err(Error::Rom {
            path,
            reason: format!("not an Atari 2600 ROM ({} bytes)", meta.len()),
        });
    }
    std::fs::File::open(&path).map_err(|e| Error::Rom {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_names_users_type() {
        for (typed, rom) in [
            ("Breakout", "breakout"),
            ("BeamRider", "beam_rider"),
            ("DemonAttack", "demon_attack"),
            ("MsPacman", "ms_pacman"),
            ("ms_pacman", "ms_pacman"),
            ("ALE/Pong-v5", "pong"),
            ("BreakoutNoFrameskip-v4", "breakout"),
            ("JamesBond", "jamesbond"),
            ("Riverraid", "riverraid"),
            ("UpNDown", "up_n_down"),
        ] {
            assert_eq!(rom_name(typed), rom, "{typed}");
        }
        assert_eq!(display_name("beam_rider"), "BeamRider");
        assert_eq!(rom_name(&display_name("up_n_down")), "up_n_down");
    }
}
