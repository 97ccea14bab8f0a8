//! IEEE 754 half precision (fp16) conversions, for the random fp16 data the GPU kernels read and
//! for the CPU reference that must see the same rounded values.

/// fp16 bits to `f32` (exact; handles subnormals, infinities and NaN).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = (h >> 10) & 0x1f;
    let man = (h & 0x3ff) as f32;
    match exp {
        0 => sign * man * 2f32.powi(-24),
        31 if man == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + man / 1024.0) * 2f32.powi(e as i32 - 15),
    }
}

/// `f32` to fp16 bits, rounding to nearest even; overflow goes to infinity, values below the
/// smallest subnormal to zero.
pub fn f32_to_f16(x: f32) -> u16 {
    let sign: u16 = if x.is_sign_negative() { 0x8000 } else { 0 };
    let a = x.abs();
    if a.is_nan() {
        return 0x7e00;
    }
    if a >= 65520.0 {
        return sign | 0x7c00;
    }
    if a < 2f32.powi(-14) {
        // Subnormal: units of 2^-24.
        let q = (a as f64 * 2f64.powi(24)).round_ties_even() as u16;
        return sign | q;
    }
    let e = a.log2().floor() as i32;
    let e = if a < 2f32.powi(e) { e - 1 } else { e };
    let m = (a as f64 / 2f64.powi(e) - 1.0) * 1024.0;
    let mut m = m.round_ties_even() as u32;
    let mut e = e + 15;
    if m == 1024 {
        m = 0;
        e += 1;
    }
    if e >= 31 {
        return sign | 0x7c00;
    }
    sign | ((e as u16) << 10) | m as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(-2.0), 0xc000);
        assert_eq!(f32_to_f16(0.5), 0x3800);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(1e6), 0x7c00);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
    }

    #[test]
    fn round_trips_every_finite_half() {
        for h in 0u16..=0xffff {
            let x = f16_to_f32(h);
            if x.is_finite() && !(x == 0.0 && h == 0x8000) {
                assert_eq!(f32_to_f16(x), h, "{h:#x} {x}");
            }
        }
    }
}
