//! Game names as users type them, and the ROM files behind them.
//!
//! ROMs come from the source distribution of PyPI's `ale-py` 0.12.1, which `setup.sh`
//! unpacks and links to `~/.cache/fire-rl/roms` (the cache root follows `FIRE_RL_CACHE` and
//! `XDG_CACHE_HOME`). `ALE_ROM_DIR` overrides the directory.
//!
//! ALE 0.12 recognises a ROM by its md5; so does this module: a game is available when
//! `<rom name>.bin` in the directory is ALE's supported dump of that game, and any other file
//! under a game's name (another game's ROM, a different dump, random bytes) is an
//! [`Error::Rom`] that says what the file is.

use std::path::{Path, PathBuf};

use super::ale::{identify_rom, supported_md5};
use crate::{Error, Result};

/// The environment variable that overrides the ROM directory.
pub const ROM_DIR_VAR: &str = "ALE_ROM_DIR";

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

/// Games whose ROM in `dir` (`<rom name>.bin`) is ALE's supported dump of that game (by
/// md5), as display names, sorted.
pub fn available_games(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut games: Vec<String> = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? != "bin" {
                return None;
            }
            let stem = path.file_stem()?.to_str()?.to_owned();
            let game = identify_rom(&path).ok()?.game?;
            (game == stem).then(|| display_name(&game))
        })
        .collect();
    games.sort();
    games
}

/// Finds and checks the ROM for `game` in `dir`: everything ALE would `exit(1)` on (and every
/// file that is not ALE's supported dump of the game) is an error.
pub fn locate_rom(game: &str, dir: &Path) -> Result<PathBuf> {
    let rom = rom_name(game);
    if !dir.is_dir() {
        return Err(Error::RomDir {
            dir: dir.to_owned(),
            reason: format!("no such directory (run ./setup.sh, or set {ROM_DIR_VAR})"),
        });
    }
    let Some(expected_md5) = supported_md5(&rom) else {
        return Err(Error::UnknownGame {
            game: game.to_owned(),
            available: available_games(dir),
        });
    };
    let path = dir.join(format!("{rom}.bin"));
    let meta = std::fs::metadata(&path).map_err(|_| Error::RomMissing {
        game: display_name(&rom),
        path: path.clone(),
        available: available_games(dir),
    })?;
    // 2600 cartridges are 2 KiB to 64 KiB (bank-switched); anything else is not a ROM.
    if !meta.is_file() || !(1024..=512 * 1024).contains(&meta.len()) {
        return Err(Error::Rom {
            path,
            reason: format!("not an Atari 2600 ROM ({} bytes)", meta.len()),
        });
    }
    let id = identify_rom(&path)?;
    match id.game {
        Some(found) if found == rom => Ok(path),
        Some(other) => Err(Error::Rom {
            path,
            reason: format!(
                "this is the ROM of {}, not of {} (md5 {})",
                display_name(&other),
                display_name(&rom),
                id.md5
            ),
        }),
        None => Err(Error::Rom {
            path,
            reason: format!(
                "md5 {} is not the {} ROM ALE supports (md5 {expected_md5}); use the ROMs \
                 that ./setup.sh installs",
                id.md5,
                display_name(&rom)
            ),
        }),
    }
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
