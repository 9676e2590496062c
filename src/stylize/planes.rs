//! The pixel side of the stylizer: photo ↔ normalised planes, reflect padding to what the network
//! accepts, and the tile grid with its feathered seams.

use image::RgbImage;

use super::Normalization;
use crate::model::GeneratorConfig;

/// Channel-first f32 pixels, normalised for the network.
#[derive(Debug, Clone)]
pub(super) struct Planes {
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) data: Vec<f32>,
}

impl Planes {
    pub(super) fn zeros(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0.0; 3 * width * height],
        }
    }

    pub(super) fn plane(&self) -> usize {
        self.width * self.height
    }

    pub(super) fn from_image(image: &RgbImage, norm: &Normalization) -> Self {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let mut planes = Self::zeros(width, height);
        let plane = planes.plane();
        let (scale, shift) = norm.affine();
        for (i, px) in image.pixels().enumerate() {
            for c in 0..3 {
                planes.data[c * plane + i] = f32::from(px.0[c]) * scale[c] - shift[c];
            }
        }
        planes
    }

    pub(super) fn to_image(&self, norm: &Normalization) -> RgbImage {
        let plane = self.plane();
        RgbImage::from_fn(self.width as u32, self.height as u32, |x, y| {
            let i = y as usize * self.width + x as usize;
            image::Rgb(std::array::from_fn(|c| {
                to_level(self.data[c * plane + i], norm, c)
            }))
        })
    }

    /// The part `[x0, y0, x1, y1]` of the photo reflect-padded as [`Padding`] says, normalised:
    /// the same values as `from_image`, `pad_for_network` and `crop`, without the whole copies.
    pub(super) fn window(
        image: &RgbImage,
        norm: &Normalization,
        padding: &Padding,
        area: [usize; 4],
    ) -> Self {
        let [x0, y0, x1, y1] = area;
        let (iw, ih) = (image.width() as usize, image.height() as usize);
        let xs: Vec<usize> = (x0..x1)
            .map(|x| reflect_index(x as isize - padding.left as isize, iw))
            .collect();
        let mut out = Planes::zeros(x1 - x0, y1 - y0);
        let plane = out.plane();
        let (scale, shift) = norm.affine();
        let raw = image.as_raw();
        for (row, y) in (y0..y1).enumerate() {
            let sy = reflect_index(y as isize - padding.top as isize, ih);
            for (col, &sx) in xs.iter().enumerate() {
                let px = &raw[3 * (sy * iw + sx)..][..3];
                for c in 0..3 {
                    out.data[c * plane + row * out.width + col] =
                        f32::from(px[c]) * scale[c] - shift[c];
                }
            }
        }
        out
    }

    /// Reflect-pad to sides that are multiples of 4 and at least the network's minimum, split
    /// evenly between the two sides. Returns the padded planes and the left and top padding.
    pub(super) fn pad_for_network(self) -> (Planes, usize, usize) {
        let Padding {
            width: pw,
            height: ph,
            left,
            top,
        } = Padding::for_network(self.width, self.height);
        if pw == self.width && ph == self.height {
            return (self, 0, 0);
        }
        let mut out = Planes::zeros(pw, ph);
        let (src_plane, dst_plane) = (self.plane(), out.plane());
        for c in 0..3 {
            for y in 0..ph {
                let sy = reflect_index(y as isize - top as isize, self.height);
                for x in 0..pw {
                    let sx = reflect_index(x as isize - left as isize, self.width);
                    out.data[c * dst_plane + y * pw + x] =
                        self.data[c * src_plane + sy * self.width + sx];
                }
            }
        }
        (out, left, top)
    }

    pub(super) fn crop(&self, x0: usize, y0: usize, width: usize, height: usize) -> Planes {
        let mut out = Planes::zeros(width, height);
        let (src_plane, dst_plane) = (self.plane(), out.plane());
        for c in 0..3 {
            for y in 0..height {
                let src = c * src_plane + (y0 + y) * self.width + x0;
                let dst = c * dst_plane + y * width;
                out.data[dst..dst + width].copy_from_slice(&self.data[src..src + width]);
            }
        }
        out
    }
}

/// The padded size the network needs for a photo: sides that are multiples of 4 and at least the
/// network's minimum, the padding split evenly between the two sides.
#[derive(Debug, Clone, Copy)]
pub(super) struct Padding {
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) left: usize,
    pub(super) top: usize,
}

impl Padding {
    pub(super) fn for_network(width: usize, height: usize) -> Self {
        let target =
            |n: usize| round_up(n, GeneratorConfig::MULTIPLE).max(GeneratorConfig::MIN_SIDE);
        let (pw, ph) = (target(width), target(height));
        Self {
            width: pw,
            height: ph,
            left: (pw - width) / 2,
            top: (ph - height) / 2,
        }
    }
}

/// A network output value back to an 8-bit level of channel `c`.
pub(super) fn to_level(value: f32, norm: &Normalization, c: usize) -> u8 {
    let v = (value * norm.std[c] + norm.mean[c]) * 255.0;
    v.round().clamp(0.0, 255.0) as u8
}

/// Mirror an out-of-range index back into `0..len` (reflection without repeating the edge,
/// as the network's own padding does), for any distance.
pub(super) fn reflect_index(i: isize, len: usize) -> usize {
    if len == 1 {
        return 0;
    }
    let period = 2 * (len as isize - 1);
    let m = i.rem_euclid(period);
    (if m < len as isize { m } else { period - m }) as usize
}

pub(super) fn round_up(n: usize, multiple: usize) -> usize {
    n.div_ceil(multiple) * multiple
}

/// Overlap between neighbouring tile interiors, blended linearly.
pub(super) const FEATHER: usize = 32;

/// One tile of a tiled run; rectangles are `[x0, y0, x1, y1]` in padded-image pixels.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tile {
    /// The part of the output this tile contributes (feathered where it overlaps a neighbour).
    pub(super) core: [usize; 4],
    /// What the network sees: the core plus context on every side that is not the image border.
    pub(super) window: [usize; 4],
}

/// Split `0..len` into interiors of at most `core` pixels that overlap by at least [`FEATHER`],
/// starting on multiples of 4 so every tile sees the same downsampling grid as the whole image.
pub(super) fn spans(len: usize, core: usize) -> Vec<(usize, usize)> {
    if len <= core {
        return vec![(0, len)];
    }
    let step = (core - FEATHER) / GeneratorConfig::MULTIPLE * GeneratorConfig::MULTIPLE;
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let end = start + core;
        if end >= len {
            // The last interior ends at the edge; it may overlap its neighbour by more.
            let start =
                (len.saturating_sub(core)) / GeneratorConfig::MULTIPLE * GeneratorConfig::MULTIPLE;
            out.push((start, len));
            return out;
        }
        out.push((start, end));
        start += step;
    }
}

/// Blend weight of pixel `p` in interior `[start, end)`: ramps up over [`FEATHER`] pixels at
/// edges shared with a neighbour, 1 at the image border and inside. Never zero.
pub(super) fn feather(p: usize, start: usize, end: usize, len: usize) -> f32 {
    let ramp = |d: usize| ((d as f32 + 0.5) / FEATHER as f32).min(1.0);
    let rising = if start > 0 { ramp(p - start) } else { 1.0 };
    let falling = if end < len { ramp(end - 1 - p) } else { 1.0 };
    rising.min(falling)
}

/// The pixel paths around the network, for `benches/hot_paths.rs` (not a stable API).
#[doc(hidden)]
pub mod hot_paths {
    use super::{Normalization, Padding, Planes, RgbImage};

    /// Photo → the network's normalised, padded input planes (the whole-image path).
    pub fn photo_to_input(photo: &RgbImage, norm: &Normalization) -> Vec<f32> {
        Planes::from_image(photo, norm).pad_for_network().0.data
    }

    /// Network output planes → photo.
    pub fn output_to_photo(
        data: Vec<f32>,
        width: usize,
        height: usize,
        norm: &Normalization,
    ) -> RgbImage {
        Planes {
            width,
            height,
            data,
        }
        .to_image(norm)
    }

    /// One tile's input straight from the photo: `area` is `[x0, y0, x1, y1]` in padded pixels.
    pub fn tile_input(photo: &RgbImage, norm: &Normalization, area: [usize; 4]) -> Vec<f32> {
        let padding = Padding::for_network(photo.width() as usize, photo.height() as usize);
        Planes::window(photo, norm, &padding, area).data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_index_mirrors_without_repeating_the_edge() {
        let got: Vec<usize> = (-3..7).map(|i| reflect_index(i, 4)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(reflect_index(-5, 1), 0);
    }

    #[test]
    fn spans_cover_everything_with_overlap_and_aligned_starts() {
        for len in [100, 513, 1024, 2000, 4097] {
            let core = 300;
            let s = spans(len, core);
            assert_eq!(s.first().unwrap().0, 0);
            assert_eq!(s.last().unwrap().1, len);
            for pair in s.windows(2) {
                assert!(pair[1].0 % 4 == 0);
                assert!(
                    pair[0].1 >= pair[1].0 + FEATHER,
                    "{pair:?} overlap too small"
                );
                assert!(pair[0].1 - pair[0].0 <= core);
            }
        }
    }

    #[test]
    fn a_window_equals_the_padded_photo_cropped() {
        let photo = RgbImage::from_fn(37, 21, |x, y| {
            image::Rgb([(x * 9) as u8, (y * 11) as u8, ((x + y) * 3) as u8])
        });
        let norm = Normalization {
            mean: [0.4, 0.5, 0.6],
            std: [0.2, 0.3, 0.25],
        };
        let (padded, _, _) = Planes::from_image(&photo, &norm).pad_for_network();
        let padding = Padding::for_network(37, 21);
        assert_eq!(
            (padded.width, padded.height),
            (padding.width, padding.height)
        );
        let (pw, ph) = (padding.width, padding.height);
        for area in [[0, 0, 8, 8], [3, 5, pw, ph - 1], [0, 0, pw, ph]] {
            let [x0, y0, x1, y1] = area;
            let window = Planes::window(&photo, &norm, &padding, area);
            let cropped = padded.crop(x0, y0, x1 - x0, y1 - y0);
            assert_eq!(window.data, cropped.data, "{area:?}");
        }
    }
}
