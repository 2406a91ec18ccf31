//! The 10×10 boolean grid every MinAtar channel is, as the low 100 bits of a `u128`: cell
//! `(y, x)` (row `y` from the top, column `x` from the left) is bit `10 * y + x`.
//!
//! Invariant: bits 100..128 are always 0 (every operation masks them off), so
//! `count_ones`, equality and emptiness need no mask.

/// Side of the grid.
pub const SIZE: usize = 10;
/// Cells of the grid.
pub const CELLS: usize = SIZE * SIZE;

const ALL: u128 = (1u128 << CELLS) - 1;
const ROW0: u128 = (1u128 << SIZE) - 1;
const COL0: u128 = {
    let mut m = 0u128;
    let mut y = 0;
    while y < SIZE {
        m |= 1u128 << (SIZE * y);
        y += 1;
    }
    m
};
const COL9: u128 = COL0 << (SIZE - 1);
/// `CELL[i]`: bit `i` alone (a table: a variable shift of a `u128` is several instructions).
const CELL: [u128; CELLS] = {
    let mut t = [0u128; CELLS];
    let mut i = 0;
    while i < CELLS {
        t[i] = 1u128 << i;
        i += 1;
    }
    t
};

/// A 10×10 boolean grid (one channel of a MinAtar state).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Grid(u128);

impl Grid {
    /// No cell set.
    pub const EMPTY: Grid = Grid(0);

    /// The grid whose cells are the low 100 bits of `bits` (bit `10 * y + x`).
    pub const fn from_bits(bits: u128) -> Self {
        Grid(bits & ALL)
    }

    /// The cells as bits (bit `10 * y + x`).
    pub const fn bits(self) -> u128 {
        self.0
    }

    /// Rows `y0..y1`, columns `x0..x1` set (NumPy's `m[y0:y1, x0:x1] = 1` on an empty grid).
    pub const fn rect(y0: usize, y1: usize, x0: usize, x1: usize) -> Self {
        let mut m = 0u128;
        let mut y = y0;
        while y < y1 {
            let mut x = x0;
            while x < x1 {
                m |= 1u128 << (SIZE * y + x);
                x += 1;
            }
            y += 1;
        }
        Grid(m)
    }

    /// Whether cell `(y, x)` is set; both must be in `0..10`.
    #[inline]
    pub fn get(self, y: usize, x: usize) -> bool {
        debug_assert!(y < SIZE && x < SIZE);
        self.0 >> (SIZE * y + x) & 1 == 1
    }

    /// Sets cell `(y, x)`; both must be in `0..10`.
    #[inline]
    pub fn set(&mut self, y: usize, x: usize) {
        debug_assert!(y < SIZE && x < SIZE);
        if let Some(bit) = CELL.get(SIZE * y + x) {
            self.0 |= bit;
        }
    }

    /// Whether bit `i` (cell `(i / 10, i % 10)`) is set.
    #[inline]
    pub fn bit(self, i: usize) -> bool {
        self.0 >> i & 1 == 1
    }

    /// Number of cells set (`np.count_nonzero`).
    #[inline]
    pub fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// No cell set.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether any cell of row `y` is set (`np.sum(m[y, :]) > 0`).
    #[inline]
    pub fn row_any(self, y: usize) -> bool {
        self.0 >> (SIZE * y) & ROW0 != 0
    }

    /// Whether any cell of column `x` is set (`np.sum(m[:, x]) > 0`).
    #[inline]
    pub fn col_any(self, x: usize) -> bool {
        self.0 & (COL0 << x) != 0
    }

    /// The largest row with column `x` set (`np.max(np.where(m[:, x] == 1))`), if any.
    pub fn lowest_in_col(self, x: usize) -> Option<usize> {
        let col = self.0 & (COL0 << x);
        (col != 0).then(|| (127 - col.leading_zeros() as usize) / SIZE)
    }

    /// `np.roll(m, 1, axis=0)`: every row one down, the last row wrapping to the top.
    #[inline]
    pub fn roll_down(self) -> Self {
        Grid(((self.0 << SIZE) | (self.0 >> (CELLS - SIZE))) & ALL)
    }

    /// `np.roll(m, -1, axis=0)`: every row one up, the top row wrapping to the bottom.
    #[inline]
    pub fn roll_up(self) -> Self {
        Grid((self.0 >> SIZE) | ((self.0 & ROW0) << (CELLS - SIZE)))
    }

    /// `np.roll(m, 1, axis=1)`: every column one right, the last column wrapping to the first.
    #[inline]
    pub fn roll_right(self) -> Self {
        Grid(((self.0 << 1) & !COL0 & ALL) | ((self.0 & COL9) >> (SIZE - 1)))
    }

    /// `np.roll(m, -1, axis=1)`: every column one left, the first column wrapping to the last.
    #[inline]
    pub fn roll_left(self) -> Self {
        Grid(((self.0 >> 1) & !COL9) | ((self.0 & COL0) << (SIZE - 1)))
    }

    /// Row `y` cleared (`m[y, :] = 0`).
    #[inline]
    pub fn without_row(self, y: usize) -> Self {
        Grid(self.0 & !(ROW0 << (SIZE * y)))
    }
}

impl std::ops::BitAnd for Grid {
    type Output = Grid;
    fn bitand(self, rhs: Grid) -> Grid {
        Grid(self.0 & rhs.0)
    }
}

impl std::ops::BitOr for Grid {
    type Output = Grid;
    fn bitor(self, rhs: Grid) -> Grid {
        Grid(self.0 | rhs.0)
    }
}

impl std::ops::Not for Grid {
    type Output = Grid;
    fn not(self) -> Grid {
        Grid(!self.0 & ALL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(g: Grid) -> Vec<(usize, usize)> {
        (0..CELLS)
            .filter(|&i| g.bit(i))
            .map(|i| (i / SIZE, i % SIZE))
            .collect()
    }

    #[test]
    fn rolls_wrap_like_numpy() {
        let mut g = Grid::EMPTY;
        g.set(9, 3);
        g.set(0, 0);
        g.set(4, 9);
        assert_eq!(cells(g.roll_down()), [(0, 3), (1, 0), (5, 9)]);
        assert_eq!(cells(g.roll_up()), [(3, 9), (8, 3), (9, 0)]);
        assert_eq!(cells(g.roll_right()), [(0, 1), (4, 0), (9, 4)]);
        assert_eq!(cells(g.roll_left()), [(0, 9), (4, 8), (9, 2)]);
        for r in [g.roll_down(), g.roll_up(), g.roll_left(), g.roll_right()] {
            assert_eq!(r.count(), 3);
            assert_eq!(r.bits() >> CELLS, 0);
        }
    }

    #[test]
    fn rows_columns_and_rectangles() {
        let g = Grid::rect(0, 4, 2, 8);
        assert_eq!(g.count(), 24);
        assert!(g.row_any(3) && !g.row_any(4));
        assert!(g.col_any(2) && g.col_any(7) && !g.col_any(1) && !g.col_any(8));
        assert_eq!(g.lowest_in_col(5), Some(3));
        assert_eq!(g.lowest_in_col(0), None);
        assert_eq!(g.without_row(3).count(), 18);
        assert_eq!((!g).count(), 76);
        assert!(g.get(0, 2) && !g.get(0, 1));
    }
}
