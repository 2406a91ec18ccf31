//! The names of the games and the Gymnasium ids of `minatar/gym.py`.

use super::{asterix, breakout, freeway, seaquest, space_invaders};
use crate::{Error, Result};

/// One of the five MinAtar games.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MinatarGame {
    /// Collect gold, avoid enemies (4 channels).
    Asterix,
    /// Break bricks with a ball (4 channels).
    Breakout,
    /// Cross a road of cars (7 channels).
    Freeway,
    /// Shoot, rescue divers, surface for oxygen (10 channels).
    Seaquest,
    /// Shoot a block of aliens (6 channels).
    SpaceInvaders,
}

impl MinatarGame {
    /// The five games, in the package's order.
    pub const ALL: [MinatarGame; 5] = [
        MinatarGame::Asterix,
        MinatarGame::Breakout,
        MinatarGame::Freeway,
        MinatarGame::Seaquest,
        MinatarGame::SpaceInvaders,
    ];

    /// The game of a name: the package's module name (`space_invaders`) or the Gymnasium
    /// title (`SpaceInvaders`), in any case, with or without `_` or `-`. Anything else is
    /// [`Error::UnknownGame`], whose message lists the five games.
    pub fn from_name(name: &str) -> Result<Self> {
        let key: String = name
            .trim()
            .chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect();
        Self::ALL
            .into_iter()
            .find(|g| g.name().replace('_', "") == key)
            .ok_or_else(|| Error::UnknownGame {
                game: name.to_owned(),
                available: Self::ALL.iter().map(|g| g.name().to_owned()).collect(),
            })
    }

    /// The package's module name: `asterix`, `breakout`, `freeway`, `seaquest`,
    /// `space_invaders`.
    pub fn name(self) -> &'static str {
        match self {
            MinatarGame::Asterix => "asterix",
            MinatarGame::Breakout => "breakout",
            MinatarGame::Freeway => "freeway",
            MinatarGame::Seaquest => "seaquest",
            MinatarGame::SpaceInvaders => "space_invaders",
        }
    }

    /// The Gymnasium title (`game.title().replace('_', '')`): `Asterix`, ..., `SpaceInvaders`.
    pub fn title(self) -> &'static str {
        match self {
            MinatarGame::Asterix => "Asterix",
            MinatarGame::Breakout => "Breakout",
            MinatarGame::Freeway => "Freeway",
            MinatarGame::Seaquest => "Seaquest",
            MinatarGame::SpaceInvaders => "SpaceInvaders",
        }
    }

    /// The channels of the state, in order (the package's `channels` dictionaries).
    pub fn channel_names(self) -> &'static [&'static str] {
        match self {
            MinatarGame::Asterix => &["player", "enemy", "trail", "gold"],
            MinatarGame::Breakout => &["paddle", "ball", "trail", "brick"],
            MinatarGame::Freeway => &[
                "chicken", "car", "speed1", "speed2", "speed3", "speed4", "speed5",
            ],
            MinatarGame::Seaquest => &[
                "sub_front",
                "sub_back",
                "friendly_bullet",
                "trail",
                "enemy_bullet",
                "enemy_fish",
                "enemy_sub",
                "oxygen_guage",
                "diver_guage",
                "diver",
            ],
            MinatarGame::SpaceInvaders => &[
                "cannon",
                "alien",
                "alien_left",
                "alien_right",
                "friendly_bullet",
                "enemy_bullet",
            ],
        }
    }

    /// Channels of the state (`state_shape()[2]`).
    pub fn channels(self) -> usize {
        match self {
            MinatarGame::Asterix => asterix::Asterix::CHANNELS,
            MinatarGame::Breakout => breakout::Breakout::CHANNELS,
            MinatarGame::Freeway => freeway::Freeway::CHANNELS,
            MinatarGame::Seaquest => seaquest::Seaquest::CHANNELS,
            MinatarGame::SpaceInvaders => space_invaders::SpaceInvaders::CHANNELS,
        }
    }

    /// `minimal_action_set()`: the actions (indices into the 6) that matter in this game.
    pub fn minimal_action_set(self) -> &'static [usize] {
        match self {
            MinatarGame::Asterix => &[0, 1, 2, 3, 4],
            MinatarGame::Breakout => &[0, 1, 3],
            MinatarGame::Freeway => &[0, 2, 4],
            MinatarGame::Seaquest => &[0, 1, 2, 3, 4, 5],
            MinatarGame::SpaceInvaders => &[0, 1, 3, 5],
        }
    }
}

impl std::fmt::Display for MinatarGame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for MinatarGame {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::from_name(s)
    }
}

/// A Gymnasium id of `minatar/gym.py`: `MinAtar/<Game>-v0` (all 6 actions) or
/// `MinAtar/<Game>-v1` (the minimal action set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnvId {
    /// The game.
    pub game: MinatarGame,
    /// `-v1`: the game's minimal action set; `-v0`: all 6 actions.
    pub minimal_actions: bool,
}

impl EnvId {
    /// Parses `MinAtar/<Game>-v0` or `MinAtar/<Game>-v1` (`<Game>` as [`MinatarGame::from_name`]
    /// reads it).
    pub fn parse(id: &str) -> Result<Self> {
        let bad = || Error::Config {
            field: "environment id",
            reason: format!(
                "`{id}` is not MinAtar/<Game>-v0 or MinAtar/<Game>-v1 with <Game> one of {}",
                MinatarGame::ALL.map(MinatarGame::title).join(", ")
            ),
        };
        let rest = id.trim().strip_prefix("MinAtar/").ok_or_else(bad)?;
        let (game, version) = rest.rsplit_once('-').ok_or_else(bad)?;
        let minimal_actions = match version {
            "v0" => false,
            "v1" => true,
            _ => return Err(bad()),
        };
        Ok(Self {
            game: MinatarGame::from_name(game)?,
            minimal_actions,
        })
    }

    /// The actions the id's action space indexes (`action_set` of `minatar/gym.py`).
    pub fn action_set(self) -> &'static [usize] {
        if self.minimal_actions {
            self.game.minimal_action_set()
        } else {
            &[0, 1, 2, 3, 4, 5]
        }
    }
}

impl std::fmt::Display for EnvId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = if self.minimal_actions { 1 } else { 0 };
        write!(f, "MinAtar/{}-v{v}", self.game.title())
    }
}

impl std::str::FromStr for EnvId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}
