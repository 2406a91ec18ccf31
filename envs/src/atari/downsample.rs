//! Max-pooling the last two screens of a step and shrinking them to the network's input, in
//! one pass over the screen.
//!
//! The shrinking is area resampling, OpenCV's `INTER_AREA` (what CleanRL, SB3 and EnvPool
//! call): every output pixel is the mean of the source area it covers, partly covered source
//! pixels weighted by the part covered. Here that mean is computed exactly in integers: along
//! an axis of `n` source and `m` output pixels, source pixel `i` spans `[i*m, (i+1)*m)` and
//! output pixel `j` spans `[j*n, (j+1)*n)` in units of `1/m` source pixel, so every overlap is
//! an integer and the mean is an integer sum over a constant divisor, rounded to nearest.
//! OpenCV computes the same mean in `f32`; the two agree except where the exact mean is a
//! tie (`x.5`), which OpenCV's rounding error breaks either way (the test against OpenCV's
//! output counts those).
//!
//! Doing it here instead of with a general resizing crate is for exactness (the box filter of
//! `fast_image_resize` is not `INTER_AREA`) and speed: the pooling, the vertical pass
//! (vectorised over a whole row) and the horizontal pass (three taps per output for 160 -> 84)
//! touch each screen byte once, with no per-call set-up. Pooling and resizing went from about
//! 430k to about 250k instructions a step (docs/BENCHMARKS.md).

/// Where one output pixel reads along one axis: `weights.len()` consecutive source pixels
/// from `first`.
#[derive(Clone, Debug, PartialEq)]
struct Taps {
    first: usize,
    weights: Vec<u16>,
}

/// The taps of every output pixel along an axis of `src` pixels shrunk to `dst`, with the
/// weights' common sum (the same for every output pixel). `1 <= dst <= src`.
fn axis_taps(src: usize, dst: usize) -> (Vec<Taps>, u32) {
    assert!(
        (1..=src).contains(&dst),
        "area resampling shrinks: {src} -> {dst}"
    );
    // Every boundary lies on a multiple of gcd(src, dst) units, so the weights divide by it.
    let unit = gcd(src, dst);
    let taps = (0..dst)
        .map(|j| {
            let (start, end) = (j * src, (j + 1) * src);
            let first = start / dst;
            let last = (end - 1) / dst;
            let weights = (first..=last)
                .map(|i| {
                    let overlap = end.min((i + 1) * dst) - start.max(i * dst);
                    u16::try_from(overlap / unit).expect("a weight is at most one source pixel")
                })
                .collect();
            Taps { first, weights }
        })
        .collect();
    (taps, (src / unit) as u32)
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Exact `x / divisor` rounded to nearest (ties up) for every `x < 2^24` (an output pixel
/// sums to at most `255 * divisor`), by one multiplication: `(x + divisor / 2) * magic >> shift`.
#[derive(Clone, Copy, Debug)]
struct RoundingDivisor {
    half: u64,
    magic: u64,
    shift: u32,
}

impl RoundingDivisor {
    /// Numerators (after adding half the divisor) stay below `2^NUMERATOR_BITS`.
    const NUMERATOR_BITS: u32 = 25;

    fn new(divisor: u32) -> Self {
        assert!(
            divisor >= 1 && 255 * u64::from(divisor) < 1 << 24,
            "divisor {divisor}"
        );
        // Granlund & Montgomery: with shift = N + ceil(log2 divisor), multiplying by
        // ceil(2^shift / divisor) and shifting divides every N-bit numerator exactly.
        let shift = Self::NUMERATOR_BITS + (32 - (divisor - 1).leading_zeros());
        Self {
            half: u64::from(divisor / 2),
            magic: (1u64 << shift).div_ceil(u64::from(divisor)),
            shift,
        }
    }

    #[inline]
    fn apply(self, x: u32) -> u32 {
        (((u64::from(x) + self.half) * self.magic) >> self.shift) as u32
    }
}

/// The horizontal taps of every output column padded to one width `W`, so the inner loop has
/// a fixed trip count: `firsts[j]` and `weights[j * W..(j + 1) * W]`.
#[derive(Clone, Debug)]
struct ColumnTaps {
    width: usize,
    firsts: Vec<usize>,
    weights: Vec<u16>,
}

impl ColumnTaps {
    fn new(taps: Vec<Taps>, src: usize) -> Self {
        let width = taps.iter().map(|t| t.weights.len()).max().unwrap_or(1);
        let mut firsts = Vec::with_capacity(taps.len());
        let mut weights = Vec::with_capacity(taps.len() * width);
        for t in taps {
            // Pad with zero weights after the taps, or before them at the right edge.
            let first = t.first.min(src - width);
            let lead = t.first - first;
            firsts.push(first);
            weights.extend(std::iter::repeat_n(0, lead));
            weights.extend(&t.weights);
            weights.extend(std::iter::repeat_n(0, width - lead - t.weights.len()));
        }
        Self {
            width,
            firsts,
            weights,
        }
    }

    /// One output row from one row of vertical sums.
    fn apply(&self, sums: &[u16], divisor: RoundingDivisor, out: &mut [u8]) {
        match self.width {
            1 => self.apply_fixed::<1>(sums, divisor, out),
            2 => self.apply_fixed::<2>(sums, divisor, out),
            3 => self.apply_fixed::<3>(sums, divisor, out),
            4 => self.apply_fixed::<4>(sums, divisor, out),
            _ => {
                let taps = self.weights.chunks_exact(self.width);
                for ((&first, weights), out) in self.firsts.iter().zip(taps).zip(out) {
                    *out = divisor.apply(weighted_sum(&sums[first..], weights)) as u8;
                }
            }
        }
    }

    fn apply_fixed<const W: usize>(&self, sums: &[u16], divisor: RoundingDivisor, out: &mut [u8]) {
        let taps = self.weights.chunks_exact(W);
        for ((&first, weights), out) in self.firsts.iter().zip(taps).zip(out) {
            // Fixed-size arrays: the compiler unrolls the W multiply-adds.
            let window: &[u16; W] = sums[first..first + W].try_into().expect("W sums");
            let weights: &[u16; W] = weights.try_into().expect("W weights");
            *out = divisor.apply(weighted_sum(window, weights)) as u8;
        }
    }
}

#[inline]
fn weighted_sum(sums: &[u16], weights: &[u16]) -> u32 {
    sums.iter()
        .zip(weights)
        .map(|(&s, &w)| u32::from(s) * u32::from(w))
        .sum()
}

/// Max-pools two `height x width` grayscale screens and area-resamples the result to
/// `out_height x out_width`.
#[derive(Clone, Debug)]
pub(crate) struct Downsampler {
    width: usize,
    height: usize,
    rows: Vec<Taps>,
    columns: ColumnTaps,
    out_width: usize,
    divisor: RoundingDivisor,
    /// One output row before the horizontal pass: vertically weighted sums of pooled pixels.
    row_sums: Vec<u16>,
}

impl Downsampler {
    /// Panics unless `1 <= out <= screen` on both axes (the configuration checks that first).
    pub(crate) fn new(height: usize, width: usize, out_height: usize, out_width: usize) -> Self {
        let (rows, row_sum) = axis_taps(height, out_height);
        let (columns, column_sum) = axis_taps(width, out_width);
        // A row sum is at most 255 * row_sum and must fit the u16 accumulators.
        assert!(
            255 * row_sum <= u32::from(u16::MAX),
            "{height} rows to {out_height} overflows the row sums"
        );
        Self {
            width,
            height,
            rows,
            columns: ColumnTaps::new(columns, width),
            out_width,
            divisor: RoundingDivisor::new(row_sum * column_sum),
            row_sums: vec![0; width],
        }
    }

    /// Writes the area-resampled `max(older, newer)` into `out` (row-major).
    pub(crate) fn pool_and_resize(&mut self, older: &[u8], newer: &[u8], out: &mut [u8]) {
        let (width, height) = (self.width, self.height);
        assert_eq!(older.len(), width * height);
        assert_eq!(newer.len(), width * height);
        assert_eq!(out.len(), self.rows.len() * self.out_width);
        for (taps, out_row) in self.rows.iter().zip(out.chunks_exact_mut(self.out_width)) {
            // Vertical pass over whole rows: vectorises, and pools each pixel where it is read.
            self.row_sums.fill(0);
            for (k, &weight) in taps.weights.iter().enumerate() {
                let start = (taps.first + k) * width;
                let (a, b) = (&older[start..start + width], &newer[start..start + width]);
                for ((sum, &a), &b) in self.row_sums.iter_mut().zip(a).zip(b) {
                    *sum += weight * u16::from(a.max(b));
                }
            }
            // Horizontal pass: a few taps per output pixel.
            self.columns.apply(&self.row_sums, self.divisor, out_row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_cover_each_output_cell_exactly() {
        for (src, dst) in [
            (210, 84),
            (160, 84),
            (160, 64),
            (210, 210),
            (7, 3),
            (100, 1),
        ] {
            let (taps, sum) = axis_taps(src, dst);
            assert_eq!(taps.len(), dst);
            for t in &taps {
                let total: u32 = t.weights.iter().map(|&w| u32::from(w)).sum();
                assert_eq!(total, sum, "{src}->{dst}");
                assert!(t.weights.iter().all(|&w| w > 0), "{src}->{dst}: {t:?}");
                assert!(t.first + t.weights.len() <= src);
            }
            // Every source pixel's weight over all outputs adds to one source pixel.
            let mut per_source = vec![0u32; src];
            for t in &taps {
                for (k, &w) in t.weights.iter().enumerate() {
                    per_source[t.first + k] += u32::from(w);
                }
            }
            let unit = (dst / gcd(src, dst)) as u32;
            assert!(per_source.iter().all(|&w| w == unit), "{src}->{dst}");
        }
    }

    #[test]
    fn screen_axes_have_the_expected_taps() {
        // 210 rows to 84: 2.5 rows per output, in units of half a row.
        let (rows, sum) = axis_taps(210, 84);
        assert_eq!(sum, 5);
        assert_eq!(
            rows[0],
            Taps {
                first: 0,
                weights: vec![2, 2, 1]
            }
        );
        assert_eq!(
            rows[1],
            Taps {
                first: 2,
                weights: vec![1, 2, 2]
            }
        );
        // 160 columns to 84: 40/21 columns per output.
        let (columns, sum) = axis_taps(160, 84);
        assert_eq!(sum, 40);
        assert_eq!(
            columns[0],
            Taps {
                first: 0,
                weights: vec![21, 19]
            }
        );
        assert_eq!(
            columns[1],
            Taps {
                first: 1,
                weights: vec![2, 21, 17]
            }
        );
    }

    #[test]
    fn rounding_division_is_exact() {
        for divisor in [1u32, 2, 3, 5, 40, 200, 255, 1000, 33_600, 65_000] {
            let d = RoundingDivisor::new(divisor);
            for x in 0..=255 * divisor {
                let want = ((u64::from(x) + u64::from(divisor / 2)) / u64::from(divisor)) as u32;
                assert_eq!(d.apply(x), want, "{x} / {divisor}");
            }
        }
    }

    /// Against `cv2.resize(max(older, newer), (84, 84), interpolation=cv2.INTER_AREA)` on two
    /// game screens and on noise (tests/data/record_area_resize.py made the file).
    #[test]
    fn matches_opencv_inter_area() {
        const SCREEN: usize = 210 * 160;
        const FRAME: usize = 84 * 84;
        let data = include_bytes!("../../tests/data/area_resize_opencv.bin");
        assert_eq!(data.len(), 3 * (2 * SCREEN + FRAME));
        let mut down = Downsampler::new(210, 160, 84, 84);
        let mut out = vec![0u8; FRAME];
        for (case, chunk) in ["breakout", "space_invaders", "noise"]
            .iter()
            .zip(data.chunks_exact(2 * SCREEN + FRAME))
        {
            let (older, rest) = chunk.split_at(SCREEN);
            let (newer, opencv) = rest.split_at(SCREEN);
            down.pool_and_resize(older, newer, &mut out);
            let pooled: Vec<u8> = older.iter().zip(newer).map(|(a, b)| *a.max(b)).collect();
            let mut ties = 0;
            for (i, (&ours, &theirs)) in out.iter().zip(opencv).enumerate() {
                let (numerator, denominator) = exact_area_mean(&pooled, i / 84, i % 84);
                let is_tie =
                    2 * numerator % denominator == 0 && (2 * numerator / denominator) % 2 == 1;
                if ours != theirs {
                    // OpenCV's f32 mean breaks exact ties (x.5) either way; nothing else
                    // may differ.
                    assert!(
                        is_tie && ours.abs_diff(theirs) == 1,
                        "{case} pixel {i}: {ours} vs {theirs}"
                    );
                    ties += 1;
                }
            }
            eprintln!("{case}: {ties} of {FRAME} pixels are ties OpenCV rounded the other way");
        }
    }

    /// The mean of the pooled screen over output pixel (row, column)'s area, as a fraction,
    /// straight from the geometry (units of 1/84 source pixel on both axes).
    fn exact_area_mean(pooled: &[u8], row: usize, column: usize) -> (u64, u64) {
        exact_mean_at(pooled, (210, 160), (84, 84), row, column)
    }

    /// [`exact_area_mean`] for a `screen` of (height, width) shrunk to `out`.
    fn exact_mean_at(
        pooled: &[u8],
        screen: (usize, usize),
        out: (usize, usize),
        row: usize,
        column: usize,
    ) -> (u64, u64) {
        // Units of 1/dst source pixel: source pixel i is [i*dst, (i+1)*dst).
        let overlap = |i: usize, src: usize, dst: usize, j: usize| -> u64 {
            let (lo, hi) = ((i * dst).max(j * src), ((i + 1) * dst).min((j + 1) * src));
            hi.saturating_sub(lo) as u64
        };
        let (height, width) = screen;
        let mut numerator = 0;
        for y in 0..height {
            for x in 0..width {
                let weight = overlap(y, height, out.0, row) * overlap(x, width, out.1, column);
                numerator += weight * u64::from(pooled[y * width + x]);
            }
        }
        (numerator, (height * width) as u64)
    }

    #[test]
    fn other_sizes_round_the_exact_mean_to_nearest() {
        // Narrow and wide column taps (1, 2, 4 and 21 wide) and the padded right edge.
        let mut state = 12_345u32;
        let mut noise = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        };
        let (height, width) = (210, 160);
        let screen: Vec<u8> = (0..height * width).map(|_| noise()).collect();
        for (out_h, out_w) in [(84, 84), (64, 64), (105, 80), (160, 160), (8, 8), (84, 37)] {
            let mut down = Downsampler::new(height, width, out_h, out_w);
            let mut out = vec![0u8; out_h * out_w];
            down.pool_and_resize(&screen, &screen, &mut out);
            for (i, &ours) in out.iter().enumerate() {
                let (n, d) = exact_mean_at(
                    &screen,
                    (height, width),
                    (out_h, out_w),
                    i / out_w,
                    i % out_w,
                );
                assert_eq!(
                    u64::from(ours),
                    (2 * n + d) / (2 * d),
                    "{out_h}x{out_w} pixel {i}"
                );
            }
        }
    }

    #[test]
    fn flat_screens_stay_flat_and_the_max_wins() {
        let mut down = Downsampler::new(210, 160, 84, 84);
        let older = vec![90u8; 210 * 160];
        let mut newer = vec![30u8; 210 * 160];
        let mut out = vec![0u8; 84 * 84];
        down.pool_and_resize(&older, &newer, &mut out);
        assert!(out.iter().all(|&p| p == 90));
        newer.fill(255);
        down.pool_and_resize(&older, &newer, &mut out);
        assert!(out.iter().all(|&p| p == 255));
    }

    #[test]
    fn one_bright_pixel_spreads_by_its_coverage() {
        // Source pixel (row 2, column 1) is half in output row 0 and half in row 1
        // vertically (weight 1 of 5 each), and wholly in output column 0 horizontally
        // (weight 19 of 40, the rest of it, 2 units, in column 1).
        let mut down = Downsampler::new(210, 160, 84, 84);
        let mut screen = vec![0u8; 210 * 160];
        screen[2 * 160 + 1] = 200;
        let mut out = vec![0u8; 84 * 84];
        down.pool_and_resize(&screen, &screen, &mut out);
        let expect = |rows: u32, cols: u32| ((200 * rows * cols + 100) / 200) as u8;
        assert_eq!(out[0], expect(1, 19));
        assert_eq!(out[1], expect(1, 2));
        assert_eq!(out[84], expect(1, 19));
        assert_eq!(out[85], expect(1, 2));
        assert_eq!(out.iter().filter(|&&p| p != 0).count(), 4);
    }
}
