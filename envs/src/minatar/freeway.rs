//! Freeway, as `minatar/environments/freeway.py` of `minatar` 1.0.15.
//!
//! A chicken in column 4 crosses eight lanes (rows 1..=8) of cars that wrap around the edges;
//! it can move up or down once every 3 steps. Reaching row 0 gives +1, sends it back to row 9
//! and draws new car speeds; a car hit sends it back to row 9. The episode ends after 2,500
//! steps (terminal on step 2,501). Channels: chicken, car, then five trail channels whose
//! index is the car's speed (moves once every 1..=5 steps). No difficulty ramping.
//!
//! Car speeds come from `randint(1, 6, 8)` (eight masked draws) and directions from
//! `np.sign(rand(8) - 0.5)`, speeds first. A draw of exactly 0.5 would give direction 0 (a car
//! moving left every step); the package's `state()` then takes the trail channel of the car
//! before it, as its loop variable leaks, and raises for the first car. That is emulated for
//! the cars after the first and no trail is drawn for the first (probability 2^-53 a draw).

use super::grid::Grid;
use super::rng::RandomState;
use super::Action;

const PLAYER_SPEED: i32 = 3;
const TIME_LIMIT: i32 = 2500;
const LANES: usize = 8;

/// One car: `[x, row, move timer, signed speed]` in the package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Car {
    x: i32,
    y: i32,
    timer: i32,
    speed: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Freeway {
    cars: [Car; LANES],
    pos: i32,
    move_timer: i32,
    terminate_timer: i32,
    terminal: bool,
}

impl Freeway {
    pub(super) const CHANNELS: usize = 7;

    pub(super) fn new(rng: &mut RandomState) -> Self {
        let mut me = Self {
            cars: [Car {
                x: 0,
                y: 0,
                timer: 0,
                speed: 0,
            }; LANES],
            pos: 9,
            move_timer: PLAYER_SPEED,
            terminate_timer: TIME_LIMIT,
            terminal: false,
        };
        me.reset(rng);
        me
    }

    pub(super) fn reset(&mut self, rng: &mut RandomState) {
        self.randomize_cars(true, rng);
        self.pos = 9;
        self.move_timer = PLAYER_SPEED;
        self.terminate_timer = TIME_LIMIT;
        self.terminal = false;
    }

    pub(super) fn terminal(&self) -> bool {
        self.terminal
    }

    /// `_randomize_cars`: new speeds and directions; with `initialize`, every car back to
    /// column 0 with its timer at its speed.
    fn randomize_cars(&mut self, initialize: bool, rng: &mut RandomState) {
        let mut speeds = [0i32; LANES];
        for s in &mut speeds {
            *s = rng.randint(1, 6) as i32;
        }
        for s in &mut speeds {
            let d = rng.rand() - 0.5;
            // np.sign(...).astype(int): -1, 0 or 1.
            *s *= if d > 0.0 {
                1
            } else if d < 0.0 {
                -1
            } else {
                0
            };
        }
        for (i, (car, &s)) in self.cars.iter_mut().zip(&speeds).enumerate() {
            if initialize {
                *car = Car {
                    x: 0,
                    y: i as i32 + 1,
                    timer: s.abs(),
                    speed: s,
                };
            } else {
                car.timer = s.abs();
                car.speed = s;
            }
        }
    }

    pub(super) fn act(&mut self, a: Action, rng: &mut RandomState) -> i32 {
        let mut r = 0;
        if self.terminal {
            return r;
        }
        if a == Action::Up && self.move_timer == 0 {
            self.move_timer = PLAYER_SPEED;
            self.pos = (self.pos - 1).max(0);
        } else if a == Action::Down && self.move_timer == 0 {
            self.move_timer = PLAYER_SPEED;
            self.pos = (self.pos + 1).min(9);
        }
        if self.pos == 0 {
            r += 1;
            self.randomize_cars(false, rng);
            self.pos = 9;
        }
        for i in 0..LANES {
            let car = &mut self.cars[i];
            if car.x == 4 && car.y == self.pos {
                self.pos = 9;
            }
            if car.timer == 0 {
                car.timer = car.speed.abs();
                car.x += if car.speed > 0 { 1 } else { -1 };
                if car.x < 0 {
                    car.x = 9;
                } else if car.x > 9 {
                    car.x = 0;
                }
                if car.x == 4 && car.y == self.pos {
                    self.pos = 9;
                }
            } else {
                car.timer -= 1;
            }
        }
        self.move_timer -= i32::from(self.move_timer > 0);
        self.terminate_timer -= 1;
        if self.terminate_timer < 0 {
            self.terminal = true;
        }
        r
    }

    /// `state()`: chicken, car, and the trail behind each car in the channel of its speed.
    pub(super) fn planes(&self, out: &mut [Grid]) {
        let (head, trails) = out.split_at_mut(2);
        head[0].set(self.pos as usize, 4);
        // Built in a local (a register), not through the slice.
        let mut cars = Grid::EMPTY;
        let mut trail: Option<usize> = None;
        for car in &self.cars {
            cars.set(car.y as usize, car.x as usize);
            let mut back = if car.speed > 0 { car.x - 1 } else { car.x + 1 };
            if back < 0 {
                back = 9;
            } else if back > 9 {
                back = 0;
            }
            if (1..=5).contains(&car.speed.abs()) {
                trail = Some(car.speed.unsigned_abs() as usize - 1);
            }
            if let Some(t) = trail {
                trails[t].set(car.y as usize, back as usize);
            }
        }
        head[1] = cars;
    }

    pub(super) fn write(&self, w: &mut Vec<i64>) {
        for c in &self.cars {
            w.extend([c.x, c.y, c.timer, c.speed].map(i64::from));
        }
        w.extend(
            [
                self.pos,
                self.move_timer,
                self.terminate_timer,
                i32::from(self.terminal),
            ]
            .map(i64::from),
        );
    }

    pub(super) fn read(r: &mut super::Fields<'_>) -> Option<Self> {
        let mut cars = [Car {
            x: 0,
            y: 0,
            timer: 0,
            speed: 0,
        }; LANES];
        for (i, c) in cars.iter_mut().enumerate() {
            *c = Car {
                x: r.cell()?,
                y: r.int(i as i32 + 1, i as i32 + 1)?,
                timer: r.int(0, 5)?,
                speed: r.int(-5, 5)?,
            };
        }
        Some(Self {
            cars,
            pos: r.cell()?,
            move_timer: r.int(0, PLAYER_SPEED)?,
            terminate_timer: r.int(-1, TIME_LIMIT)?,
            terminal: r.bool()?,
        })
    }
}
