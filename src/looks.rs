//! Known parametric looks. The gallery's colour grades are these formulas, applied exactly and
//! instantly by the stylizer (a look's pack has no network: see `Manifest::look`). Grading photos
//! with one also gives before/after pairs whose true answer is known, so a network trained on them
//! can be measured against the grade itself.

use image::RgbImage;

/// The parametric looks `portraitist grade` can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookName {
    /// Warm sepia print: see [`sepia_print`].
    SepiaPrint,
    /// The modern cinematic teal-and-orange grade: see [`teal_orange`].
    TealOrange,
}

impl LookName {
    pub const ALL: [LookName; 2] = [LookName::SepiaPrint, LookName::TealOrange];

    pub fn name(self) -> &'static str {
        match self {
            LookName::SepiaPrint => "sepia-print",
            LookName::TealOrange => "teal-orange",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.name() == name)
    }

    pub fn apply(self, photo: &RgbImage) -> RgbImage {
        match self {
            LookName::SepiaPrint => map_pixels(photo, sepia_print),
            LookName::TealOrange => map_pixels(photo, teal_orange),
        }
    }
}

fn map_pixels(photo: &RgbImage, f: fn([u8; 3]) -> [u8; 3]) -> RgbImage {
    let mut out = photo.clone();
    for p in out.pixels_mut() {
        p.0 = f(p.0);
    }
    out
}

/// A warm-toned silver print, per pixel:
///
/// 1. luma `y` (BT.601) of the sRGB values, 0..1;
/// 2. contrast: `y1 = 0.6·y + 0.4·smoothstep(y)` (an S-curve that keeps 0, ½ and 1);
/// 3. faded paper: `y2 = 0.05 + 0.90·y1` (blacks lifted to 5 %, whites held at 95 %);
/// 4. split toning: `rgb = y2 · tint`, where `tint` goes from brown shadows (1.16, 0.93, 0.70)
///    to cream highlights (1.05, 1.00, 0.88) as `y2` rises; values clamp to 0..1.
pub fn sepia_print([r, g, b]: [u8; 3]) -> [u8; 3] {
    let y = (0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)) / 255.0;
    let smooth = y * y * (3.0 - 2.0 * y);
    let y1 = 0.6 * y + 0.4 * smooth;
    let y2 = 0.05 + 0.90 * y1;
    const SHADOW: [f32; 3] = [1.16, 0.93, 0.70];
    const HIGHLIGHT: [f32; 3] = [1.05, 1.00, 0.88];
    let mut out = [0u8; 3];
    for c in 0..3 {
        let tint = SHADOW[c] + (HIGHLIGHT[c] - SHADOW[c]) * y2;
        out[c] = ((y2 * tint).clamp(0.0, 1.0) * 255.0).round() as u8;
    }
    out
}

/// A modern cinematic grade, per pixel on sRGB values in 0..1:
///
/// 1. contrast: each channel `c1 = c + 0.45·(smoothstep(c) − c)`;
/// 2. saturation × 1.1 around the BT.601 luma `y` of `c1`;
/// 3. split toning by `y`: shadows pushed toward teal by `(1 − y)·(−0.13, +0.03, +0.10)`, highlights
///    toward orange by `y·(+0.10, +0.03, −0.11)`;
/// 4. matte finish: `0.03 + 0.95·c` (blacks lifted a little); values clamp to 0..1.
pub fn teal_orange(rgb: [u8; 3]) -> [u8; 3] {
    const SHADOW: [f32; 3] = [-0.13, 0.03, 0.10];
    const HIGHLIGHT: [f32; 3] = [0.10, 0.03, -0.11];
    let contrast = rgb.map(|v| {
        let c = f32::from(v) / 255.0;
        c + 0.45 * (c * c * (3.0 - 2.0 * c) - c)
    });
    let y = 0.299 * contrast[0] + 0.587 * contrast[1] + 0.114 * contrast[2];
    let mut out = [0u8; 3];
    for c in 0..3 {
        let saturated = y + 1.1 * (contrast[c] - y);
        let toned = saturated + (1.0 - y) * SHADOW[c] + y * HIGHLIGHT[c];
        let matte = 0.03 + 0.95 * toned.clamp(0.0, 1.0);
        out[c] = (matte * 255.0).round() as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sepia_print_is_warm_monotonic_and_faded() {
        let black = sepia_print([0, 0, 0]);
        let white = sepia_print([255, 255, 255]);
        assert!(black[0] > 5 && black[0] < 25, "lifted blacks: {black:?}");
        assert!(white[2] < white[0], "warm whites: {white:?}");
        let mut last = 0u32;
        for v in 0..=255u8 {
            let [r, g, b] = sepia_print([v, v, v]);
            assert!(r >= g && g >= b, "warm at {v}: {r} {g} {b}");
            let sum = u32::from(r) + u32::from(g) + u32::from(b);
            assert!(sum >= last, "brightness never falls as input rises ({v})");
            last = sum;
        }
        // Colour is discarded: two colours of equal luma grade the same.
        let luma = |p: [u8; 3]| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
        let (a, b) = ([120, 120, 120], [66, 155, 80]);
        assert!((luma(a) - luma(b)).abs() < 1.0);
        let (ga, gb) = (sepia_print(a), sepia_print(b));
        assert!(
            ga.iter().zip(gb).all(|(x, y)| x.abs_diff(y) <= 1),
            "{ga:?} {gb:?}"
        );
    }

    #[test]
    fn teal_orange_tints_shadows_teal_and_highlights_orange() {
        let [r, g, b] = teal_orange([50, 50, 50]);
        assert!(b > r + 10 && g > r, "teal shadows: {r} {g} {b}");
        let [r, g, b] = teal_orange([200, 200, 200]);
        assert!(r > b + 20, "orange highlights: {r} {g} {b}");
        let [r, _, b] = teal_orange([0, 0, 0]);
        assert!(r <= 10 && b > r, "matte, teal-leaning black: {r} {b}");
        // Brightness never falls as a grey input rises, and contrast grows around the middle.
        let sum = |p: [u8; 3]| p.iter().map(|&v| u32::from(v)).sum::<u32>();
        let mut last = 0;
        for v in 0..=255u8 {
            let s = sum(teal_orange([v, v, v]));
            assert!(s >= last, "monotonic at {v}");
            last = s;
        }
        assert!(
            sum(teal_orange([160; 3])) - sum(teal_orange([96; 3])) > 3 * 64,
            "more contrast"
        );
        assert_eq!(LookName::parse("teal-orange"), Some(LookName::TealOrange));
    }
}
