//! A pack's preview pictures: the photo beside its stylized version, made from a built-in
//! public-domain portrait unless another photo is given. The CLI's `export` and `learn` and the
//! page's "Learn a style" make them alike.

use image::RgbImage;
use image::imageops::{self, FilterType};

use crate::image_io;
use crate::stylize::{Blend, RenderError, Stylizer, blend};

/// The portrait previews are made from when none is given: Grace Hopper (US Navy, public domain).
pub const PORTRAIT: &[u8] = include_bytes!("../../tests/fixtures/grace_hopper.jpg");
/// A pack's main preview file.
pub const FILE: &str = "preview.jpg";
/// Height of a preview's two halves.
pub const HEIGHT: u32 = 256;

/// The built-in portrait.
pub fn portrait() -> RgbImage {
    image_io::decode(PORTRAIT).expect("the built-in portrait decodes")
}

/// Original | stylized, side by side, each [`HEIGHT`] pixels high.
pub async fn render(photo: &RgbImage, stylizer: &Stylizer) -> Result<RgbImage, RenderError> {
    let scale = f64::from(HEIGHT) / f64::from(photo.height());
    let width = ((f64::from(photo.width()) * scale).round() as u32).max(16);
    let small = imageops::resize(photo, width, HEIGHT, FilterType::Lanczos3);
    let styled = stylizer.render(&small, None, &mut |_, _| {}).await?;
    let styled = blend(&small, &styled, Blend::default());
    Ok(image_io::grid(&[vec![small, styled]]))
}
