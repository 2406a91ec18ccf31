//! Asterix, as `minatar/environments/asterix.py` of `minatar` 1.0.15.
//!
//! The player moves in the four directions on rows 1..=8; enemies and gold spawn at the left
//! or right edge of a random free row (slot `i` is row `i + 1`) and cross it. Gold gives +1;
//! touching an enemy ends the episode. Channels: player, enemy, trail, gold. With ramping, every
//! 101 steps after the first 101 the spawn interval drops by one (to 1) and, every other ramp,
//! the move interval too (to 1).
//!
//! Order of one step (the package's): spawn if the spawn timer is 0 (two `rand()`, then
//! `randint(free slots)`, which draws nothing when one slot is free; the two `rand()` are
//! drawn even when no slot is free); move the player; collide every entity with the player;
//! if the move timer is 0, move every entity one cell and collide again; count the timers
//! down; ramp.

use super::grid::Grid;
use super::rng::RandomState;
use super::Action;

const RAMP_INTERVAL: i32 = 100;
const INIT_SPAWN_SPEED: i32 = 10;
const INIT_MOVE_INTERVAL: i32 = 5;
/// Entity slots (rows 1..=8).
const SLOTS: usize = 8;

/// An enemy or a piece of gold: `[x, row, moving right, gold]` in the package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entity {
    x: i32,
    y: i32,
    right: bool,
    gold: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Asterix {
    ramping: bool,
    player_x: i32,
    player_y: i32,
    entities: [Option<Entity>; SLOTS],
    spawn_speed: i32,
    spawn_timer: i32,
    move_speed: i32,
    move_timer: i32,
    ramp_timer: i32,
    ramp_index: i32,
    terminal: bool,
}

impl Asterix {
    pub(super) const CHANNELS: usize = 4;

    /// The state the package's `reset()` makes (it draws nothing).
    pub(super) fn new(ramping: bool) -> Self {
        Self {
            ramping,
            player_x: 5,
            player_y: 5,
            entities: [None; SLOTS],
            spawn_speed: INIT_SPAWN_SPEED,
            spawn_timer: INIT_SPAWN_SPEED,
            move_speed: INIT_MOVE_INTERVAL,
            move_timer: INIT_MOVE_INTERVAL,
            ramp_timer: RAMP_INTERVAL,
            ramp_index: 0,
            terminal: false,
        }
    }

    pub(super) fn reset(&mut self, _rng: &mut RandomState) {
        *self = Self::new(self.ramping);
    }

    pub(super) fn terminal(&self) -> bool {
        self.terminal
    }

    pub(super) fn ramp_index(&self) -> i32 {
        self.ramp_index
    }

    /// One step; the reward (the episode's end is in [`terminal`](Self::terminal)).
    pub(super) fn act(&mut self, a: Action, rng: &mut RandomState) -> i32 {
        let mut r = 0;
        if self.terminal {
            return r;
        }
        if self.spawn_timer == 0 {
            self.spawn_entity(rng);
            self.spawn_timer = self.spawn_speed;
        }
        match a {
            Action::Left => self.player_x = (self.player_x - 1).max(0),
            Action::Right => self.player_x = (self.player_x + 1).min(9),
            Action::Up => self.player_y = (self.player_y - 1).max(1),
            Action::Down => self.player_y = (self.player_y + 1).min(8),
            Action::Noop | Action::Fire => {}
        }
        // The package tests every entity against the player, before and after moving them;
        // an entity never leaves its row (slot i is row i + 1) and the player is on rows
        // 1..=8, so only the entity of the player's row can touch it, and testing that one
        // alone gives the same outcome.
        let row = (self.player_y - 1) as usize;
        r += self.collide(row);
        if self.move_timer == 0 {
            self.move_timer = self.move_speed;
            for slot in &mut self.entities {
                if let Some(e) = slot {
                    e.x += if e.right { 1 } else { -1 };
                    // An entity leaving the grid is gone (it cannot touch the player then:
                    // the player's column is in 0..=9).
                    if e.x < 0 || e.x > 9 {
                        *slot = None;
                    }
                }
            }
            r += self.collide(row);
        }
        self.spawn_timer -= 1;
        self.move_timer -= 1;
        if self.ramping && (self.spawn_speed > 1 || self.move_speed > 1) {
            if self.ramp_timer >= 0 {
                self.ramp_timer -= 1;
            } else {
                if self.move_speed > 1 && self.ramp_index % 2 == 1 {
                    self.move_speed -= 1;
                }
                if self.spawn_speed > 1 {
                    self.spawn_speed -= 1;
                }
                self.ramp_index += 1;
                self.ramp_timer = RAMP_INTERVAL;
            }
        }
        r
    }

    /// The entity of slot `i`, if any, against the player: gold is picked up (+1), an enemy
    /// ends the episode (and stays where it is).
    fn collide(&mut self, i: usize) -> i32 {
        let Some(e) = self.entities[i] else {
            return 0;
        };
        if e.x != self.player_x || e.y != self.player_y {
            return 0;
        }
        if e.gold {
            self.entities[i] = None;
            1
        } else {
            self.terminal = true;
            0
        }
    }

    /// `_spawn_entity`: a random side and kind, then a random free slot.
    fn spawn_entity(&mut self, rng: &mut RandomState) {
        let right = rng.rand() < 0.5;
        let gold = rng.rand() < 1.0 / 3.0;
        let x = if right { 0 } else { 9 };
        let mut free = [0usize; SLOTS];
        let mut n = 0;
        for (i, e) in self.entities.iter().enumerate() {
            if e.is_none() {
                free[n] = i;
                n += 1;
            }
        }
        if n == 0 {
            return;
        }
        let slot = free[rng.randint(0, n as i64) as usize];
        self.entities[slot] = Some(Entity {
            x,
            y: slot as i32 + 1,
            right,
            gold,
        });
    }

    /// `state()`: player, enemy, trail (the cell an entity came from), gold.
    pub(super) fn planes(&self, out: &mut [Grid]) {
        let [player, enemy, trail, gold] = out else {
            unreachable!("asterix has 4 channels")
        };
        player.set(self.player_y as usize, self.player_x as usize);
        for e in self.entities.iter().flatten() {
            let (y, x) = (e.y as usize, e.x as usize);
            if e.gold {
                gold.set(y, x);
            } else {
                enemy.set(y, x);
            }
            let back = if e.right { e.x - 1 } else { e.x + 1 };
            if (0..=9).contains(&back) {
                trail.set(y, back as usize);
            }
        }
    }

    /// Writes the fields for a snapshot, in declaration order.
    pub(super) fn write(&self, w: &mut Vec<i64>) {
        w.extend([
            i64::from(self.ramping),
            i64::from(self.player_x),
            i64::from(self.player_y),
        ]);
        for e in &self.entities {
            match e {
                None => w.extend([0, 0, 0, 0, 0]),
                Some(e) => w.extend([
                    1,
                    i64::from(e.x),
                    i64::from(e.y),
                    i64::from(e.right),
                    i64::from(e.gold),
                ]),
            }
        }
        w.extend(
            [
                self.spawn_speed,
                self.spawn_timer,
                self.move_speed,
                self.move_timer,
                self.ramp_timer,
                self.ramp_index,
            ]
            .map(i64::from),
        );
        w.push(i64::from(self.terminal));
    }

    /// Reads what [`write`](Self::write) wrote; `None` for a damaged one.
    pub(super) fn read(r: &mut super::Fields<'_>) -> Option<Self> {
        let ramping = r.bool()?;
        let (player_x, player_y) = (r.cell()?, r.int(1, 8)?);
        let mut entities = [None; SLOTS];
        for (i, slot) in entities.iter_mut().enumerate() {
            let some = r.bool()?;
            let e = Entity {
                x: r.int(0, 9)?,
                y: r.int(0, 9)?,
                right: r.bool()?,
                gold: r.bool()?,
            };
            if some {
                (e.y == i as i32 + 1).then_some(())?;
                *slot = Some(e);
            }
        }
        let mut me = Self::new(ramping);
        me.player_x = player_x;
        me.player_y = player_y;
        me.entities = entities;
        me.spawn_speed = r.int(1, INIT_SPAWN_SPEED)?;
        me.spawn_timer = r.int(0, INIT_SPAWN_SPEED)?;
        me.move_speed = r.int(1, INIT_MOVE_INTERVAL)?;
        me.move_timer = r.int(0, INIT_MOVE_INTERVAL)?;
        me.ramp_timer = r.int(-1, RAMP_INTERVAL)?;
        me.ramp_index = r.int(0, i32::MAX)?;
        me.terminal = r.bool()?;
        Some(me)
    }
}
