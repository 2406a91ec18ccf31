//! Space Invaders, as `minatar/environments/space_invaders.py` of `minatar` 1.0.15.
//!
//! A cannon on the bottom row shoots upward (once every 5 steps) at a 4×6 block of aliens
//! (rows 0..=3, columns 2..=7 at the start) that moves sideways, and one row down with a turn
//! when it reaches an edge. +1 per alien shot. The alien nearest the cannon's column shoots
//! every 10 steps. The episode ends when an alien or an alien's bullet reaches the cannon, or
//! when the block turns while it has an alien on the bottom row. A cleared wave comes back;
//! with ramping, each new wave moves one step faster (move interval 12 down to 6). Channels:
//! cannon, alien, alien_left, alien_right (the aliens again, in the channel of their
//! direction), friendly_bullet, enemy_bullet. This game draws no random numbers.
//!
//! The grids move with `np.roll`, so the package's wrap-arounds are kept: turning down rolls
//! the bottom row of aliens to the top (the episode has ended then, but the state shows it).

use super::grid::Grid;
use super::rng::RandomState;
use super::Action;

const SHOT_COOL_DOWN: i32 = 5;
const ENEMY_MOVE_INTERVAL: i32 = 12;
const ENEMY_SHOT_INTERVAL: i32 = 10;
const WAVE: Grid = Grid::rect(0, 4, 2, 8);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SpaceInvaders {
    ramping: bool,
    pos: i32,
    f_bullets: Grid,
    e_bullets: Grid,
    aliens: Grid,
    /// -1 (left) or 1 (right).
    alien_dir: i32,
    enemy_move_interval: i32,
    alien_move_timer: i32,
    alien_shot_timer: i32,
    ramp_index: i32,
    shot_timer: i32,
    terminal: bool,
}

impl SpaceInvaders {
    pub(super) const CHANNELS: usize = 6;

    pub(super) fn new(ramping: bool) -> Self {
        Self {
            ramping,
            pos: 5,
            f_bullets: Grid::EMPTY,
            e_bullets: Grid::EMPTY,
            aliens: WAVE,
            alien_dir: -1,
            enemy_move_interval: ENEMY_MOVE_INTERVAL,
            alien_move_timer: ENEMY_MOVE_INTERVAL,
            alien_shot_timer: ENEMY_SHOT_INTERVAL,
            ramp_index: 0,
            shot_timer: 0,
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

    pub(super) fn act(&mut self, a: Action, _rng: &mut RandomState) -> i32 {
        let mut r = 0;
        if self.terminal {
            return r;
        }
        let pos = |me: &Self| me.pos as usize;
        if a == Action::Fire && self.shot_timer == 0 {
            self.f_bullets.set(9, pos(self));
            self.shot_timer = SHOT_COOL_DOWN;
        } else if a == Action::Left {
            self.pos = (self.pos - 1).max(0);
        } else if a == Action::Right {
            self.pos = (self.pos + 1).min(9);
        }
        self.f_bullets = self.f_bullets.roll_up().without_row(9);
        self.e_bullets = self.e_bullets.roll_down().without_row(0);
        if self.e_bullets.get(9, pos(self)) {
            self.terminal = true;
        }
        if self.aliens.get(9, pos(self)) {
            self.terminal = true;
        }
        if self.alien_move_timer == 0 {
            self.alien_move_timer = (self.aliens.count() as i32).min(self.enemy_move_interval);
            if (self.aliens.col_any(0) && self.alien_dir < 0)
                || (self.aliens.col_any(9) && self.alien_dir > 0)
            {
                self.alien_dir = -self.alien_dir;
                if self.aliens.row_any(9) {
                    self.terminal = true;
                }
                self.aliens = self.aliens.roll_down();
            } else if self.alien_dir > 0 {
                self.aliens = self.aliens.roll_right();
            } else {
                self.aliens = self.aliens.roll_left();
            }
            if self.aliens.get(9, pos(self)) {
                self.terminal = true;
            }
        }
        if self.alien_shot_timer == 0 {
            self.alien_shot_timer = ENEMY_SHOT_INTERVAL;
            // The block is never empty here (a cleared wave is refilled at the end of the
            // step that cleared it), so the package's `_nearest_alien` always finds one.
            if let Some((y, x)) = self.nearest_alien() {
                self.e_bullets.set(y, x);
            }
        }
        let kills = self.aliens & self.f_bullets;
        r += kills.count() as i32;
        self.aliens = self.aliens & !kills;
        self.f_bullets = self.f_bullets & !kills;
        self.shot_timer -= i32::from(self.shot_timer > 0);
        self.alien_move_timer -= 1;
        self.alien_shot_timer -= 1;
        if self.aliens.is_empty() {
            if self.enemy_move_interval > 6 && self.ramping {
                self.enemy_move_interval -= 1;
                self.ramp_index += 1;
            }
            self.aliens = WAVE;
        }
        r
    }

    /// `_nearest_alien`: the columns by distance from the cannon (the left one first on a tie,
    /// Python's stable sort of 0..10), the first with an alien, its lowest alien.
    fn nearest_alien(&self) -> Option<(usize, usize)> {
        let pos = self.pos;
        (0..10)
            .flat_map(|d| {
                [pos - d, pos + d]
                    .into_iter()
                    .take(if d == 0 { 1 } else { 2 })
            })
            .filter(|x| (0..=9).contains(x))
            .find_map(|x| {
                self.aliens
                    .lowest_in_col(x as usize)
                    .map(|y| (y, x as usize))
            })
    }

    /// `state()`: cannon, alien, alien_left, alien_right, friendly_bullet, enemy_bullet.
    pub(super) fn planes(&self, out: &mut [Grid]) {
        let [cannon, alien, left, right, friendly, enemy] = out else {
            unreachable!("space_invaders has 6 channels")
        };
        cannon.set(9, self.pos as usize);
        *alien = self.aliens;
        if self.alien_dir < 0 {
            *left = self.aliens;
        } else {
            *right = self.aliens;
        }
        *friendly = self.f_bullets;
        *enemy = self.e_bullets;
    }

    pub(super) fn write(&self, w: &mut Vec<i64>) {
        w.extend(
            [
                i32::from(self.ramping),
                self.pos,
                self.alien_dir,
                self.enemy_move_interval,
                self.alien_move_timer,
                self.alien_shot_timer,
                self.ramp_index,
                self.shot_timer,
                i32::from(self.terminal),
            ]
            .map(i64::from),
        );
        for g in [self.f_bullets, self.e_bullets, self.aliens] {
            w.extend([(g.bits() >> 64) as i64, g.bits() as u64 as i64]);
        }
    }

    pub(super) fn read(r: &mut super::Fields<'_>) -> Option<Self> {
        let mut me = Self::new(r.bool()?);
        me.pos = r.cell()?;
        me.alien_dir = r.int(-1, 1)?;
        (me.alien_dir != 0).then_some(())?;
        me.enemy_move_interval = r.int(6, ENEMY_MOVE_INTERVAL)?;
        me.alien_move_timer = r.int(0, ENEMY_MOVE_INTERVAL)?;
        me.alien_shot_timer = r.int(0, ENEMY_SHOT_INTERVAL)?;
        me.ramp_index = r.int(0, i32::MAX)?;
        me.shot_timer = r.int(0, SHOT_COOL_DOWN)?;
        me.terminal = r.bool()?;
        let mut grids = [Grid::EMPTY; 3];
        for g in &mut grids {
            let bits = ((r.next()? as u64 as u128) << 64) | r.next()? as u64 as u128;
            (bits == Grid::from_bits(bits).bits()).then_some(())?;
            *g = Grid::from_bits(bits);
        }
        [me.f_bullets, me.e_bullets, me.aliens] = grids;
        Some(me)
    }
}
