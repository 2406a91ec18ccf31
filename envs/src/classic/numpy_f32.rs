//! NumPy's float32 `np.sin` and `np.cos`, bit for bit, for the one place a task observes a
//! float32 state: Acrobot's reset casts its state to float32, so Gymnasium's first observation
//! is `np.cos`/`np.sin` of float32 scalars.
//!
//! NumPy 2.x does not call libm's `sinf`/`cosf` there: on every CPU with fused multiply-add
//! (x86-64 from AVX2/FMA3 on, aarch64) its loop (`loops_trigonometric.dispatch.cpp`) reduces
//! the argument by Cody-Waite's method and evaluates T. Myklebust's polynomials with fused
//! multiply-adds (max error 1.49 ulp), which differs from the correctly rounded value for
//! about 1 in 1,400 arguments in [-0.1, 0.1] (cosine; 1 in 3,600 for sine), so about 1 Acrobot
//! reset in 500 would differ by an ulp without this. Past the Cody-Waite range (|x| >
//! 71476.0625 for cosine, 117435.992 for sine) NumPy calls libm, as here. On a CPU without
//! FMA NumPy calls libm for every argument, and Gymnasium run there may differ from this by an
//! ulp. Written from that algorithm; the constants are NumPy's hexadecimal float literals,
//! given by their bits.

const TWO_OVER_PI: f32 = f32::from_bits(0x3f22_f983); // 0x1.45f306p-1
const PIO2_HIGH: f32 = f32::from_bits(0xbfc9_0fd8); // -0x1.921fb0p+00
const PIO2_MED: f32 = f32::from_bits(0xb4a8_885a); // -0x1.5110b4p-22
const PIO2_LOW: f32 = f32::from_bits(0xa7c2_34c4); // -0x1.846988p-48
/// Adding and subtracting 1.5 * 2^23 rounds to the nearest integer (ties to even).
const RINT_MAGIC: f32 = f32::from_bits(0x4b40_0000); // 0x1.8p+23
const COS_RANGE: f32 = f32::from_bits(0x478b_9a08); // 71476.0625f
const SIN_RANGE: f32 = f32::from_bits(0x47e5_5dff); // 117435.992f

/// `np.cos(np.float32(x))`.
pub(crate) fn cos(x: f32) -> f32 {
    sin_or_cos(x, true)
}

/// `np.sin(np.float32(x))`.
pub(crate) fn sin(x: f32) -> f32 {
    sin_or_cos(x, false)
}

fn sin_or_cos(x: f32, cosine: bool) -> f32 {
    if x.is_nan() {
        return f32::NAN;
    }
    let range = if cosine { COS_RANGE } else { SIN_RANGE };
    if x.abs() > range {
        // libm's cosf/sinf, as NumPy calls them for these lanes (infinities give NaN).
        return if cosine { x.cos() } else { x.sin() };
    }
    // Cody-Waite: x* = x - q pi/2 with q = rint(2x/pi), |x*| <= pi/4, in three fused steps.
    // NumPy's source multiplies and then adds the magic number, but its build (GCC, which
    // contracts by default) fuses the two: measured, only the fused form matches NumPy's
    // quadrant for every argument (the unfused one differs near odd multiples of pi/4).
    let quadrant = x.mul_add(TWO_OVER_PI, RINT_MAGIC) - RINT_MAGIC;
    let mut r = quadrant.mul_add(PIO2_HIGH, x);
    r = quadrant.mul_add(PIO2_MED, r);
    r = quadrant.mul_add(PIO2_LOW, r);
    let r2 = r * r;
    // 0x1.98e616p-16 r2 - 0x1.6c06dcp-10, ...
    let mut c = f32::from_bits(0x37cc_730b).mul_add(r2, f32::from_bits(0xbab6_036e));
    c = c.mul_add(r2, f32::from_bits(0x3d2a_aa9e)); // 0x1.55553cp-05
    c = c.mul_add(r2, -0.5);
    c = c.mul_add(r2, 1.0);
    // 0x1.7d3bbcp-19 r2 - 0x1.a06bbap-13, ...
    let mut s = f32::from_bits(0x363e_9dde).mul_add(r2, f32::from_bits(0xb950_35dd));
    s = s.mul_add(r2, f32::from_bits(0x3c08_88cd)); // 0x1.11119ap-07
    s = s.mul_add(r2, f32::from_bits(0xbe2a_aaab)); // -0x1.555556p-03
    s = s.mul_add(r2, 0.0);
    s = s.mul_add(r, r);
    // The quadrant is a whole number of magnitude below 2^17 here, so the cast is exact.
    let q = quadrant as i32 + i32::from(cosine);
    let v = if q & 1 == 0 { s } else { c };
    if q & 2 == 2 {
        0.0 - v
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // (x, np.cos(x), np.sin(x)) as float32 bits, printed by numpy 2.4.6 on x86-64 (AVX-512):
    // the first 14 where NumPy's result is not the correctly rounded one, then edges (the
    // Cody-Waite limits and beyond). The whole algorithm was also checked against NumPy on
    // two thirds of all floats in [-0.1, 0.1] and 60 million others: no difference.
    const NUMPY: &[(u32, u32, u32)] = &[
        (0x3da80b7f, 0x3f7f2382, 0x3da7db3d), // 0.08205318
        (0xbd947bd3, 0x3f7f53d4, 0xbd945a88), // -0.0725018
        (0xbdaff3ba, 0x3f7f0e48, 0xbdafbc55), // -0.08591409
        (0xbdba80b5, 0x3f7ef071, 0xbdba3ebe), // -0.0910658
        (0xc020e25c, 0xbf4f3099, 0xbf165c5e), // -2.5138159
        (0x3fa3627f, 0x3e948ab4, 0x3f74fd4d), // 1.2764434
        (0x40104909, 0xbf21b2e2, 0x3f4677c8), // 2.2544577
        (0xc5c830ed, 0xbf6af4b4, 0x3ecb4a54), // -6406.1157
        (0x45a32fd9, 0x3f4b2e69, 0x3f1bbc24), // 5221.981
        (0xc5dc78de, 0x3f1d6197, 0x3f49e8a6), // -7055.1084
        (0x46ffffa6, 0x3f078a2b, 0x3f592cce), // 32767.824
        (0xc66b7bb9, 0xbf4205e2, 0x3f270199), // -15070.931
        (0x479e8ef6, 0xbf7fe9a8, 0xbcd5e5f0), // 81181.92
        (0x47b4b456, 0x3f3819d1, 0x3f31e26c), // 92520.67
        (0x00000000, 0x3f800000, 0x00000000), // 0.0
        (0x80000000, 0x3f800000, 0x80000000), // -0.0
        (0x3dcccccd, 0x3f7eb898, 0x3dcc7577), // 0.1
        (0xbdcccccd, 0x3f7eb898, 0xbdcc7577), // -0.1
        (0x3f490fdb, 0x3f3504f3, 0x3f3504f3), // 0.7853982
        (0x1e3ce508, 0x3f800000, 0x1e3ce508), // 1e-20
        (0x478b9a08, 0x3def8fc6, 0xbf7e3e19), // 71476.06
        (0x48435000, 0x3f7f587e, 0xbd92555f), // 200000.0
        (0xff61b1e6, 0xbef7f57c, 0xbf5ff9c4), // -3e+38
    ];

    #[test]
    fn matches_numpy() {
        for &(x, c, s) in NUMPY {
            let v = f32::from_bits(x);
            assert_eq!(cos(v).to_bits(), c, "cos({v:e})");
            assert_eq!(sin(v).to_bits(), s, "sin({v:e})");
        }
        assert!(cos(f32::NAN).is_nan() && sin(f32::INFINITY).is_nan());
    }
}
