//! After the network: strength and "keep original colours" applied to a stored full-strength
//! result, so front ends change them instantly without running the network again.

use image::RgbImage;
use image::imageops::{self, FilterType};

/// Strength and colour options applied after the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blend {
    /// 0 returns the original exactly, 1 the full style.
    pub strength: f32,
    /// Keep the original's colours (chroma) and take only the brightness from the style.
    pub keep_colors: bool,
}

impl Default for Blend {
    fn default() -> Self {
        Self {
            strength: 1.0,
            keep_colors: false,
        }
    }
}

/// Combine an original photo with its full-strength stylized version (same size).
pub fn blend(original: &RgbImage, styled: &RgbImage, settings: Blend) -> RgbImage {
    assert_eq!(
        original.dimensions(),
        styled.dimensions(),
        "blend needs images of one size"
    );
    let strength = settings.strength.clamp(0.0, 1.0);
    let mut out = original.clone();
    if strength == 0.0 {
        return out;
    }
    for (o, s) in out.pixels_mut().zip(styled.pixels()) {
        let orig = o.0.map(f32::from);
        let mut style = s.0.map(f32::from);
        if settings.keep_colors {
            let [_, cb, cr] = to_ycbcr(orig);
            let [y, _, _] = to_ycbcr(style);
            style = from_ycbcr([y, cb, cr]);
        }
        for c in 0..3 {
            let v = orig[c] + strength * (style[c] - orig[c]);
            o.0[c] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Full-range BT.601 YCbCr (the JPEG convention), on 0..255 values.
pub fn to_ycbcr([r, g, b]: [f32; 3]) -> [f32; 3] {
    [
        0.299 * r + 0.587 * g + 0.114 * b,
        128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
        128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
    ]
}

pub fn from_ycbcr([y, cb, cr]: [f32; 3]) -> [f32; 3] {
    let (cb, cr) = (cb - 128.0, cr - 128.0);
    [
        y + 1.402 * cr,
        y - 0.344_136 * cb - 0.714_136 * cr,
        y + 1.772 * cb,
    ]
}

/// Downscale (never upscale) so that the longer side is at most `max_side`.
pub fn fit_within(photo: &RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = photo.dimensions();
    let longest = w.max(h);
    if longest <= max_side || max_side == 0 {
        return photo.clone();
    }
    let scale = f64::from(max_side) / f64::from(longest);
    let nw = ((f64::from(w) * scale).round() as u32).max(1);
    let nh = ((f64::from(h) * scale).round() as u32).max(1);
    imageops::resize(photo, nw, nh, FilterType::Lanczos3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ycbcr_round_trips() {
        for rgb in [[0.0, 0.0, 0.0], [255.0, 10.0, 100.0], [12.0, 200.0, 255.0]] {
            let back = from_ycbcr(to_ycbcr(rgb));
            for c in 0..3 {
                assert!((back[c] - rgb[c]).abs() < 0.01, "{rgb:?} -> {back:?}");
            }
        }
    }
}
