//! Seaquest, as `minatar/environments/seaquest.py` of `minatar` 1.0.15.
//!
//! The player's submarine (two cells: front and back, so its heading shows) shoots sideways at
//! fish and enemy submarines crossing rows 1..=8 (+1 each), picks up divers (at most 6) and
//! must surface (row 0) before its oxygen (200 steps) runs out. Surfacing with at least one
//! diver refills the oxygen and costs a diver; surfacing with 6 also gives `oxygen * 10 //
//! 200`. Each surfacing ramps the difficulty (spawn interval 20 down to 1, enemy move interval
//! 5 down to 2 every other time). The episode ends on touching a fish, a submarine or an enemy
//! bullet, when the oxygen is out, or when surfacing with no diver. Channels: sub_front,
//! sub_back, friendly_bullet, trail, enemy_bullet, enemy_fish, enemy_sub, oxygen_guage,
//! diver_guage, diver.
//!
//! The package keeps its objects in Python lists, iterates most of them with
//! `for obj in reversed(list)` while removing from them with `list.remove(obj)`, which removes
//! the first element *equal* to `obj`, not `obj` itself. This file keeps those semantics
//! exactly rather than relying on equal objects never meeting: lists are `Vec`s of values
//! whose `PartialEq` is the package's list equality, [`Reversed`] is CPython's reverse list
//! iterator (an index that stops once past the end), and where the package goes on using an
//! object after removing it (an enemy submarine shot while moving still fires on that step if
//! its shot timer is due, even from outside the grid) the object is followed to where it is.
//!
//! Quirks kept: surfacing with 6 divers sets the count to 0 and then takes one away, to -1, so
//! afterwards the submarine can surface with no diver on board (the count only goes down)
//! until it picks up enough divers to reach 0 again; the diver gauge then shows nothing.

use super::grid::Grid;
use super::pylist::{remove, Reversed};
use super::rng::RandomState;
use super::Action;

const MAX_OXYGEN: i32 = 200;
const INIT_SPAWN_SPEED: i32 = 20;
const DIVER_SPAWN_SPEED: i32 = 30;
const INIT_MOVE_INTERVAL: i32 = 5;
const SHOT_COOL_DOWN: i32 = 5;
const ENEMY_SHOT_INTERVAL: i32 = 10;
const DIVER_MOVE_INTERVAL: i32 = 5;
/// Room reserved in each list, so that steps do not allocate (the lists can grow past it).
const RESERVE: usize = 32;

/// A bullet: `[x, row, moving right]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bullet {
    x: i32,
    y: i32,
    right: bool,
}

/// A fish or a diver: `[x, row, moving right, move timer]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Swimmer {
    x: i32,
    y: i32,
    right: bool,
    move_timer: i32,
}

/// An enemy submarine: `[x, row, moving right, move timer, shot timer]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sub {
    x: i32,
    y: i32,
    right: bool,
    move_timer: i32,
    shot_timer: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Seaquest {
    ramping: bool,
    oxygen: i32,
    diver_count: i32,
    sub_x: i32,
    sub_y: i32,
    /// Facing right.
    sub_or: bool,
    f_bullets: Vec<Bullet>,
    e_bullets: Vec<Bullet>,
    e_fish: Vec<Swimmer>,
    e_subs: Vec<Sub>,
    divers: Vec<Swimmer>,
    e_spawn_speed: i32,
    e_spawn_timer: i32,
    d_spawn_timer: i32,
    move_speed: i32,
    ramp_index: i32,
    shot_timer: i32,
    surface: bool,
    terminal: bool,
}

fn step(right: bool) -> i32 {
    if right {
        1
    } else {
        -1
    }
}

fn outside(x: i32) -> bool {
    !(0..=9).contains(&x)
}

impl Seaquest {
    pub(super) const CHANNELS: usize = 10;

    pub(super) fn new(ramping: bool) -> Self {
        let mut me = Self {
            ramping,
            oxygen: 0,
            diver_count: 0,
            sub_x: 0,
            sub_y: 0,
            sub_or: false,
            f_bullets: Vec::with_capacity(RESERVE),
            e_bullets: Vec::with_capacity(RESERVE),
            e_fish: Vec::with_capacity(RESERVE),
            e_subs: Vec::with_capacity(RESERVE),
            divers: Vec::with_capacity(RESERVE),
            e_spawn_speed: 0,
            e_spawn_timer: 0,
            d_spawn_timer: 0,
            move_speed: 0,
            ramp_index: 0,
            shot_timer: 0,
            surface: true,
            terminal: false,
        };
        me.start();
        me
    }

    /// `reset()` (it draws nothing), keeping the lists' memory.
    fn start(&mut self) {
        self.oxygen = MAX_OXYGEN;
        self.diver_count = 0;
        self.sub_x = 5;
        self.sub_y = 0;
        self.sub_or = false;
        self.f_bullets.clear();
        self.e_bullets.clear();
        self.e_fish.clear();
        self.e_subs.clear();
        self.divers.clear();
        self.e_spawn_speed = INIT_SPAWN_SPEED;
        self.e_spawn_timer = INIT_SPAWN_SPEED;
        self.d_spawn_timer = DIVER_SPAWN_SPEED;
        self.move_speed = INIT_MOVE_INTERVAL;
        self.ramp_index = 0;
        self.shot_timer = 0;
        self.surface = true;
        self.terminal = false;
    }

    pub(super) fn reset(&mut self, _rng: &mut RandomState) {
        self.start();
    }

    pub(super) fn terminal(&self) -> bool {
        self.terminal
    }

    pub(super) fn ramp_index(&self) -> i32 {
        self.ramp_index
    }

    fn at_player(&self, x: i32, y: i32) -> bool {
        x == self.sub_x && y == self.sub_y
    }

    pub(super) fn act(&mut self, a: Action, rng: &mut RandomState) -> i32 {
        let mut r = 0;
        if self.terminal {
            return r;
        }
        if self.e_spawn_timer == 0 {
            self.spawn_enemy(rng);
            self.e_spawn_timer = self.e_spawn_speed;
        }
        if self.d_spawn_timer == 0 {
            self.spawn_diver(rng);
            self.d_spawn_timer = DIVER_SPAWN_SPEED;
        }
        match a {
            Action::Fire if self.shot_timer == 0 => {
                self.f_bullets.push(Bullet {
                    x: self.sub_x,
                    y: self.sub_y,
                    right: self.sub_or,
                });
                self.shot_timer = SHOT_COOL_DOWN;
            }
            Action::Left => {
                self.sub_x = (self.sub_x - 1).max(0);
                self.sub_or = false;
            }
            Action::Right => {
                self.sub_x = (self.sub_x + 1).min(9);
                self.sub_or = true;
            }
            Action::Up => self.sub_y = (self.sub_y - 1).max(0),
            Action::Down => self.sub_y = (self.sub_y + 1).min(8),
            Action::Fire | Action::Noop => {}
        }
        r += self.update_friendly_bullets();
        self.update_divers();
        r += self.update_subs();
        self.update_enemy_bullets();
        r += self.update_fish();

        self.e_spawn_timer -= i32::from(self.e_spawn_timer > 0);
        self.d_spawn_timer -= i32::from(self.d_spawn_timer > 0);
        self.shot_timer -= i32::from(self.shot_timer > 0);
        if self.oxygen <= 0 {
            self.terminal = true;
        }
        if self.sub_y > 0 {
            self.oxygen -= 1;
            self.surface = false;
        } else if !self.surface {
            if self.diver_count == 0 {
                self.terminal = true;
            } else {
                r += self.surface();
            }
        }
        r
    }

    /// Friendly bullets move; one leaving the grid goes, one meeting a fish (first) or a
    /// submarine takes it out (+1).
    fn update_friendly_bullets(&mut self) -> i32 {
        let mut r = 0;
        let mut it = Reversed::new(self.f_bullets.len());
        while let Some(k) = it.next(self.f_bullets.len()) {
            let mut at = Some(k);
            self.f_bullets[k].x += step(self.f_bullets[k].right);
            let b = self.f_bullets[k];
            if outside(b.x) {
                remove(&mut self.f_bullets, b, &mut at);
            } else if let Some(f) = self.e_fish.iter().position(|f| f.x == b.x && f.y == b.y) {
                let fish = self.e_fish[f];
                remove(&mut self.e_fish, fish, &mut None);
                remove(&mut self.f_bullets, b, &mut at);
                r += 1;
            } else if let Some(s) = self.e_subs.iter().position(|s| s.x == b.x && s.y == b.y) {
                let sub = self.e_subs[s];
                remove(&mut self.e_subs, sub, &mut None);
                remove(&mut self.f_bullets, b, &mut at);
                r += 1;
            }
        }
        r
    }

    /// Divers are picked up where the submarine is (while it has fewer than 6), or move.
    fn update_divers(&mut self) {
        let mut it = Reversed::new(self.divers.len());
        while let Some(k) = it.next(self.divers.len()) {
            let mut at = Some(k);
            let mut d = self.divers[k];
            if self.at_player(d.x, d.y) && self.diver_count < 6 {
                remove(&mut self.divers, d, &mut at);
                self.diver_count += 1;
            } else if d.move_timer == 0 {
                d.move_timer = DIVER_MOVE_INTERVAL;
                d.x += step(d.right);
                self.divers[k] = d;
                if outside(d.x) {
                    remove(&mut self.divers, d, &mut at);
                } else if self.at_player(d.x, d.y) && self.diver_count < 6 {
                    remove(&mut self.divers, d, &mut at);
                    self.diver_count += 1;
                }
            } else {
                self.divers[k].move_timer -= 1;
            }
        }
    }

    /// Enemy submarines hit the player, move (and may meet a friendly bullet), and fire.
    fn update_subs(&mut self) -> i32 {
        let mut r = 0;
        let mut it = Reversed::new(self.e_subs.len());
        while let Some(k) = it.next(self.e_subs.len()) {
            // The loop's object: in the list at `at`, or (once removed) only in `sub`.
            let mut at = Some(k);
            let mut sub = self.e_subs[k];
            if self.at_player(sub.x, sub.y) {
                self.terminal = true;
            }
            if sub.move_timer == 0 {
                sub.move_timer = self.move_speed;
                sub.x += step(sub.right);
                self.e_subs[k] = sub;
                if outside(sub.x) {
                    remove(&mut self.e_subs, sub, &mut at);
                } else if self.at_player(sub.x, sub.y) {
                    self.terminal = true;
                } else if let Some(b) = self
                    .f_bullets
                    .iter()
                    .position(|b| b.x == sub.x && b.y == sub.y)
                {
                    let bullet = self.f_bullets[b];
                    remove(&mut self.e_subs, sub, &mut at);
                    remove(&mut self.f_bullets, bullet, &mut None);
                    r += 1;
                }
            } else {
                sub.move_timer -= 1;
            }
            if sub.shot_timer == 0 {
                sub.shot_timer = ENEMY_SHOT_INTERVAL;
                self.e_bullets.push(Bullet {
                    x: sub.x,
                    y: sub.y,
                    right: sub.right,
                });
            } else {
                sub.shot_timer -= 1;
            }
            if let Some(i) = at {
                self.e_subs[i] = sub;
            }
        }
        r
    }

    /// Enemy bullets hit the player before and after moving; one leaving the grid goes.
    fn update_enemy_bullets(&mut self) {
        let mut it = Reversed::new(self.e_bullets.len());
        while let Some(k) = it.next(self.e_bullets.len()) {
            let mut at = Some(k);
            if self.at_player(self.e_bullets[k].x, self.e_bullets[k].y) {
                self.terminal = true;
            }
            self.e_bullets[k].x += step(self.e_bullets[k].right);
            let b = self.e_bullets[k];
            if outside(b.x) {
                remove(&mut self.e_bullets, b, &mut at);
            } else if self.at_player(b.x, b.y) {
                self.terminal = true;
            }
        }
    }

    /// Fish hit the player, and move (and may meet a friendly bullet).
    fn update_fish(&mut self) -> i32 {
        let mut r = 0;
        let mut it = Reversed::new(self.e_fish.len());
        while let Some(k) = it.next(self.e_fish.len()) {
            let mut at = Some(k);
            let mut fish = self.e_fish[k];
            if self.at_player(fish.x, fish.y) {
                self.terminal = true;
            }
            if fish.move_timer == 0 {
                fish.move_timer = self.move_speed;
                fish.x += step(fish.right);
                self.e_fish[k] = fish;
                if outside(fish.x) {
                    remove(&mut self.e_fish, fish, &mut at);
                } else if self.at_player(fish.x, fish.y) {
                    self.terminal = true;
                } else if let Some(b) = self
                    .f_bullets
                    .iter()
                    .position(|b| b.x == fish.x && b.y == fish.y)
                {
                    let bullet = self.f_bullets[b];
                    remove(&mut self.e_fish, fish, &mut at);
                    remove(&mut self.f_bullets, bullet, &mut None);
                    r += 1;
                }
            } else {
                self.e_fish[k].move_timer -= 1;
            }
        }
        r
    }

    /// `_surface`: refill the oxygen, pay for 6 divers, take one diver, ramp.
    fn surface(&mut self) -> i32 {
        self.surface = true;
        let r = if self.diver_count == 6 {
            self.diver_count = 0;
            (self.oxygen * 10).div_euclid(MAX_OXYGEN)
        } else {
            0
        };
        self.oxygen = MAX_OXYGEN;
        self.diver_count -= 1;
        if self.ramping && (self.e_spawn_speed > 1 || self.move_speed > 2) {
            if self.move_speed > 2 && self.ramp_index % 2 == 1 {
                self.move_speed -= 1;
            }
            if self.e_spawn_speed > 1 {
                self.e_spawn_speed -= 1;
            }
            self.ramp_index += 1;
        }
        r
    }

    /// `_spawn_enemy`: side, kind and row (`rand`, `rand`, `randint(1, 9)`); nothing spawns in
    /// a row where an enemy moves the other way.
    fn spawn_enemy(&mut self, rng: &mut RandomState) {
        let right = rng.rand() < 0.5;
        let is_sub = rng.rand() < 1.0 / 3.0;
        let x = if right { 0 } else { 9 };
        let y = rng.randint(1, 9) as i32;
        let clash = self.e_subs.iter().any(|z| z.y == y && z.right != right)
            || self.e_fish.iter().any(|z| z.y == y && z.right != right);
        if clash {
            return;
        }
        if is_sub {
            self.e_subs.push(Sub {
                x,
                y,
                right,
                move_timer: self.move_speed,
                shot_timer: ENEMY_SHOT_INTERVAL,
            });
        } else {
            self.e_fish.push(Swimmer {
                x,
                y,
                right,
                move_timer: self.move_speed,
            });
        }
    }

    /// `_spawn_diver`: side and row (`rand`, `randint(1, 9)`).
    fn spawn_diver(&mut self, rng: &mut RandomState) {
        let right = rng.rand() < 0.5;
        let x = if right { 0 } else { 9 };
        let y = rng.randint(1, 9) as i32;
        self.divers.push(Swimmer {
            x,
            y,
            right,
            move_timer: DIVER_MOVE_INTERVAL,
        });
    }

    /// `state()`.
    pub(super) fn planes(&self, out: &mut [Grid]) {
        let [front, back, friendly, trail, enemy_bullet, fish, sub, oxygen, divers, diver] = out
        else {
            unreachable!("seaquest has 10 channels")
        };
        let (x, y) = (self.sub_x as usize, self.sub_y as usize);
        front.set(y, x);
        // The package indexes with x - 1 or x + 1 unchecked. Both stay inside the grid (the
        // submarine faces right only after moving right, so x >= 1, and left only at x <= 8),
        // but -1 would be NumPy's last column, as here.
        let back_x = if self.sub_or { (x + 9) % 10 } else { x + 1 };
        if back_x < 10 {
            back.set(y, back_x);
        }
        let gauge = (self.oxygen.max(0) * 10).div_euclid(MAX_OXYGEN);
        for cx in 0..gauge.min(10) {
            oxygen.set(9, cx as usize);
        }
        // state[9, 9 - diver_count:9]: empty once the count is negative (start past 9).
        for cx in (9 - self.diver_count).max(0)..9 {
            divers.set(9, cx as usize);
        }
        for b in &self.f_bullets {
            friendly.set(b.y as usize, b.x as usize);
        }
        for b in &self.e_bullets {
            enemy_bullet.set(b.y as usize, b.x as usize);
        }
        let mut with_trail = |g: &mut Grid, x: i32, y: i32, right: bool| {
            g.set(y as usize, x as usize);
            let back = if right { x - 1 } else { x + 1 };
            if (0..=9).contains(&back) {
                trail.set(y as usize, back as usize);
            }
        };
        for f in &self.e_fish {
            with_trail(fish, f.x, f.y, f.right);
        }
        for s in &self.e_subs {
            with_trail(sub, s.x, s.y, s.right);
        }
        for d in &self.divers {
            with_trail(diver, d.x, d.y, d.right);
        }
    }

    pub(super) fn write(&self, w: &mut Vec<i64>) {
        w.extend(
            [
                i32::from(self.ramping),
                self.oxygen,
                self.diver_count,
                self.sub_x,
                self.sub_y,
                i32::from(self.sub_or),
                self.e_spawn_speed,
                self.e_spawn_timer,
                self.d_spawn_timer,
                self.move_speed,
                self.ramp_index,
                self.shot_timer,
                i32::from(self.surface),
                i32::from(self.terminal),
            ]
            .map(i64::from),
        );
        for list in [&self.f_bullets, &self.e_bullets] {
            w.push(list.len() as i64);
            for b in list {
                w.extend([b.x, b.y, i32::from(b.right)].map(i64::from));
            }
        }
        for list in [&self.e_fish, &self.divers] {
            w.push(list.len() as i64);
            for f in list {
                w.extend([f.x, f.y, i32::from(f.right), f.move_timer].map(i64::from));
            }
        }
        w.push(self.e_subs.len() as i64);
        for s in &self.e_subs {
            w.extend([s.x, s.y, i32::from(s.right), s.move_timer, s.shot_timer].map(i64::from));
        }
    }

    pub(super) fn read(r: &mut super::Fields<'_>) -> Option<Self> {
        let mut me = Self::new(r.bool()?);
        me.oxygen = r.int(-1, MAX_OXYGEN)?;
        me.diver_count = r.int(i32::MIN, 6)?;
        me.sub_x = r.cell()?;
        me.sub_y = r.int(0, 8)?;
        me.sub_or = r.bool()?;
        me.e_spawn_speed = r.int(1, INIT_SPAWN_SPEED)?;
        me.e_spawn_timer = r.int(0, INIT_SPAWN_SPEED)?;
        me.d_spawn_timer = r.int(0, DIVER_SPAWN_SPEED)?;
        me.move_speed = r.int(2, INIT_MOVE_INTERVAL)?;
        me.ramp_index = r.int(0, i32::MAX)?;
        me.shot_timer = r.int(0, SHOT_COOL_DOWN)?;
        me.surface = r.bool()?;
        me.terminal = r.bool()?;
        for list in [&mut me.f_bullets, &mut me.e_bullets] {
            for _ in 0..r.len()? {
                list.push(Bullet {
                    x: r.cell()?,
                    y: r.cell()?,
                    right: r.bool()?,
                });
            }
        }
        for list in [&mut me.e_fish, &mut me.divers] {
            for _ in 0..r.len()? {
                list.push(Swimmer {
                    x: r.cell()?,
                    y: r.cell()?,
                    right: r.bool()?,
                    move_timer: r.int(0, INIT_MOVE_INTERVAL)?,
                });
            }
        }
        for _ in 0..r.len()? {
            me.e_subs.push(Sub {
                x: r.cell()?,
                y: r.cell()?,
                right: r.bool()?,
                move_timer: r.int(0, INIT_MOVE_INTERVAL)?,
                shot_timer: r.int(0, ENEMY_SHOT_INTERVAL)?,
            });
        }
        Some(me)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surfacing_with_six_divers_leaves_minus_one_and_pays_for_oxygen() {
        let mut game = Seaquest::new(true);
        let mut rng = RandomState::new(0);
        game.diver_count = 6;
        game.oxygen = 150;
        game.surface = false;
        // At the surface already: a no-op step surfaces.
        let r = game.act(Action::Noop, &mut rng);
        assert_eq!((r, game.diver_count, game.oxygen), (7, -1, MAX_OXYGEN));
        assert!(!game.terminal);
        let mut planes = [Grid::EMPTY; 10];
        game.planes(&mut planes);
        assert!(planes[8].is_empty(), "the diver gauge shows nothing at -1");
        // Down and up again with no diver on board: no end, the count goes to -2.
        game.act(Action::Down, &mut rng);
        game.act(Action::Up, &mut rng);
        assert_eq!(game.diver_count, -2);
        assert!(!game.terminal);
    }
}
