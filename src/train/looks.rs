//! Known parametric looks. Grading photos with one gives before/after pairs whose true answer is
//! known, so a style trained on them can be measured against the grade itself (see the classical
//! style in `models/`).

use image::RgbImage;

/// The parametric looks `portraitist grade` can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookName {
    /// Warm sepia print: see [`sepia_print`].
    SepiaPrint,
}

impl LookName {
    pub const ALL: [LookName; 1] = [LookName::SepiaPrint];

    pub fn name(self) -> &'static str {
        match self {
            LookName::SepiaPrint => "sepia-print",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.name() == name)
    }

    pub fn apply(self, photo: &RgbImage) -> RgbImage {
        match self {
            LookName::SepiaPrint => map_pixels(photo, sepia_print),
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
}
