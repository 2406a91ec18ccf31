//! Breakout, as `minatar/environments/breakout.py` of `minatar` 1.0.15.
//!
//! A paddle on the bottom row, a ball moving on diagonals and three rows of bricks (rows 1..=3).
//! +1 per brick broken; the episode ends when the ball reaches the bottom row past the paddle.
//! When the ball comes down to the bottom row with no brick left, the three rows come back.
//! Channels: paddle, ball, trail (the ball's previous cell), brick. No difficulty ramping.
//!
//! Quirks kept from the package: the ball breaks at most one brick on consecutive steps (the
//! `strike` flag: a ball that meets a brick on the step after breaking one enters the brick's
//! cell instead, and breaks nothing); the wall test uses the clamped column, so a ball in a
//! corner can bounce off a wall and a brick at once. `reset()` draws one `randint(2)` (start
//! at the left going down-right, or at the right going down-left).

use super::grid::Grid;
use super::rng::RandomState;
use super::Action;

const BRICKS: Grid = Grid::rect(1, 4, 0, 10);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Breakout {
    ball_x: i32,
    ball_y: i32,
    /// 0: up-left, 1: up-right, 2: down-right, 3: down-left.
    ball_dir: usize,
    pos: i32,
    bricks: Grid,
    strike: bool,
    last_x: i32,
    last_y: i32,
    terminal: bool,
}

impl Breakout {
    pub(super) const CHANNELS: usize = 4;

    pub(super) fn new(rng: &mut RandomState) -> Self {
        let mut me = Self {
            ball_x: 0,
            ball_y: 3,
            ball_dir: 2,
            pos: 4,
            bricks: BRICKS,
            strike: false,
            last_x: 0,
            last_y: 3,
            terminal: false,
        };
        me.reset(rng);
        me
    }

    pub(super) fn reset(&mut self, rng: &mut RandomState) {
        self.ball_y = 3;
        (self.ball_x, self.ball_dir) = if rng.randint(0, 2) == 0 {
            (0, 2)
        } else {
            (9, 3)
        };
        self.pos = 4;
        self.bricks = BRICKS;
        self.strike = false;
        self.last_x = self.ball_x;
        self.last_y = self.ball_y;
        self.terminal = false;
    }

    pub(super) fn terminal(&self) -> bool {
        self.terminal
    }

    pub(super) fn act(&mut self, a: Action, _rng: &mut RandomState) -> i32 {
        let mut r = 0;
        if self.terminal {
            return r;
        }
        match a {
            Action::Left => self.pos = (self.pos - 1).max(0),
            Action::Right => self.pos = (self.pos + 1).min(9),
            _ => {}
        }
        self.last_x = self.ball_x;
        self.last_y = self.ball_y;
        let (mut new_x, mut new_y) = match self.ball_dir {
            0 => (self.ball_x - 1, self.ball_y - 1),
            1 => (self.ball_x + 1, self.ball_y - 1),
            2 => (self.ball_x + 1, self.ball_y + 1),
            _ => (self.ball_x - 1, self.ball_y + 1),
        };
        // Reflections: off a side wall, off the ceiling or a brick, off the paddle's far half.
        const SIDE: [usize; 4] = [1, 0, 3, 2];
        const FLIP: [usize; 4] = [3, 2, 1, 0];
        const PADDLE_EDGE: [usize; 4] = [2, 3, 0, 1];
        let mut strike_toggle = false;
        if !(0..=9).contains(&new_x) {
            new_x = new_x.clamp(0, 9);
            self.ball_dir = SIDE[self.ball_dir];
        }
        if new_y < 0 {
            new_y = 0;
            self.ball_dir = FLIP[self.ball_dir];
        } else if self.bricks.get(new_y as usize, new_x as usize) {
            strike_toggle = true;
            if !self.strike {
                r += 1;
                self.strike = true;
                self.bricks = self.bricks & !cell(new_y, new_x);
                new_y = self.last_y;
                self.ball_dir = FLIP[self.ball_dir];
            }
        } else if new_y == 9 {
            if self.bricks.is_empty() {
                self.bricks = BRICKS;
            }
            if self.ball_x == self.pos {
                self.ball_dir = FLIP[self.ball_dir];
                new_y = self.last_y;
            } else if new_x == self.pos {
                self.ball_dir = PADDLE_EDGE[self.ball_dir];
                new_y = self.last_y;
            } else {
                self.terminal = true;
            }
        }
        if !strike_toggle {
            self.strike = false;
        }
        self.ball_x = new_x;
        self.ball_y = new_y;
        r
    }

    /// `state()`: paddle, ball, trail, brick.
    pub(super) fn planes(&self, out: &mut [Grid]) {
        let [paddle, ball, trail, brick] = out else {
            unreachable!("breakout has 4 channels")
        };
        ball.set(self.ball_y as usize, self.ball_x as usize);
        paddle.set(9, self.pos as usize);
        trail.set(self.last_y as usize, self.last_x as usize);
        *brick = self.bricks;
    }

    pub(super) fn write(&self, w: &mut Vec<i64>) {
        w.extend(
            [
                self.ball_x,
                self.ball_y,
                self.ball_dir as i32,
                self.pos,
                i32::from(self.strike),
                self.last_x,
                self.last_y,
                i32::from(self.terminal),
            ]
            .map(i64::from),
        );
        let bits = self.bricks.bits();
        w.extend([(bits >> 64) as i64, bits as u64 as i64]);
    }

    pub(super) fn read(r: &mut super::Fields<'_>) -> Option<Self> {
        let me = Self {
            ball_x: r.cell()?,
            ball_y: r.cell()?,
            ball_dir: r.int(0, 3)? as usize,
            pos: r.cell()?,
            strike: r.bool()?,
            last_x: r.cell()?,
            last_y: r.cell()?,
            terminal: r.bool()?,
            bricks: Grid::EMPTY,
        };
        let bits = ((r.next()? as u64 as u128) << 64) | r.next()? as u64 as u128;
        (bits == Grid::from_bits(bits).bits()).then_some(())?;
        Some(Self {
            bricks: Grid::from_bits(bits),
            ..me
        })
    }
}

fn cell(y: i32, x: i32) -> Grid {
    let mut g = Grid::EMPTY;
    g.set(y as usize, x as usize);
    g
}
