//! Decoding photos safely and encoding results. Shared by the CLI, training and the browser.
//!
//! Every failure is a [`DecodeError`] that says what is wrong with the file in words a photographer
//! understands; nothing here panics on hostile bytes, and the pixel count is checked from the
//! header before any pixel memory is allocated.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{
    DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader, Limits, Rgb, RgbImage,
};

/// Largest photo accepted: 100 megapixels (a 64-megapixel camera photo fits comfortably).
pub const MAX_PIXELS: u64 = 100_000_000;
/// Smallest side accepted; below this there is no portrait to stylize.
pub const MIN_SIDE: u32 = 16;

/// Why a file could not be turned into a photo.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the file is empty")]
    Empty,
    #[error("not an image: the content is not JPEG, PNG, WebP or GIF")]
    NotAnImage,
    #[error("{0} images are not supported: convert it to JPEG, PNG or WebP first")]
    UnsupportedFormat(&'static str),
    #[error(
        "the image is {width}×{height} pixels; the largest supported is {} megapixels",
        MAX_PIXELS / 1_000_000
    )]
    TooLarge { width: u32, height: u32 },
    #[error("the image is {width}×{height} pixels; it must be at least {MIN_SIDE}×{MIN_SIDE}")]
    TooSmall { width: u32, height: u32 },
    #[error("the image data is corrupt or truncated ({0})")]
    Corrupt(String),
}

/// Decode a photo from its bytes into 8-bit RGB, upright (EXIF orientation applied), with any
/// transparency flattened onto white.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let format = image::guess_format(bytes).map_err(|_| unrecognised(bytes))?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Gif
    ) {
        // Two-byte signatures ("BM" for BMP, "P1"…"P7" for PNM) also start ordinary text: a text
        // file is named as a format only when it is one of PNM's text variants.
        let pnm_text =
            format == ImageFormat::Pnm && bytes.get(2).is_some_and(u8::is_ascii_whitespace);
        if looks_like_text(bytes) && !pnm_text {
            return Err(unrecognised(bytes));
        }
        return Err(DecodeError::UnsupportedFormat(format_name(format)));
    }
    // A PNG decoder reads past the header before it reports dimensions; read them first so an
    // oversized claim is named as such even when the file is also broken.
    if let Some((width, height)) = png_dimensions(bytes)
        && u64::from(width) * u64::from(height) > MAX_PIXELS
    {
        return Err(DecodeError::TooLarge { width, height });
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(DecodeError::Corrupt(
            "the JPEG ends before its end-of-image marker".into(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    // Backstop for decoders' own buffers; the pixel count is checked below from the header.
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(DecodeError::TooLarge { width, height });
    }
    // Orientation metadata that cannot be read is not worth refusing the photo for.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
    let (width, height) = (image.width(), image.height());
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(DecodeError::TooSmall { width, height });
    }
    Ok(flatten_onto_white(image))
}

fn corrupt(err: image::ImageError) -> DecodeError {
    match err {
        image::ImageError::Limits(_) => {
            DecodeError::Corrupt("it needs more memory than allowed".into())
        }
        other => DecodeError::Corrupt(other.to_string().trim_end().to_owned()),
    }
}

fn png_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || !bytes.starts_with(b"\x89PNG\r\n\x1a\n") || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Some((be(16), be(20)))
}

/// Whether the JPEG's marker structure reaches its end-of-image marker (the JPEG decoder fills a
/// cut-off file with grey rather than failing). Walks the segments, skipping each by its length (so
/// an EXIF thumbnail inside APP1, with its own scan and end markers, is never mistaken for the
/// image), and the entropy-coded data after each start-of-scan, and stops at the first
/// end-of-image marker: whatever follows it (phones append trailers, "motion photos" a whole
/// video, which may contain any bytes) is ignored.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut i = 2; // after the start-of-image marker
    while i + 1 < bytes.len() {
        if bytes[i] != 0xFF {
            return true; // no marker where one belongs: let the decoder say what is wrong
        }
        let marker = bytes[i + 1];
        match marker {
            0xD9 => return true,
            0xFF => i += 1,               // fill byte
            0x01 | 0xD0..=0xD7 => i += 2, // markers without a length
            _ => {
                let Some(len) = bytes.get(i + 2..i + 4) else {
                    return false;
                };
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                if len < 2 {
                    return true;
                }
                i += 2 + len;
                if marker == 0xDA {
                    // Entropy-coded data runs to the next marker that is neither a stuffed zero
                    // nor a restart marker.
                    while i + 1 < bytes.len() {
                        match (bytes[i], bytes[i + 1]) {
                            (0xFF, 0x00 | 0xD0..=0xD7) => i += 2,
                            (0xFF, 0xFF) => i += 1,
                            (0xFF, _) => break,
                            _ => i += 1,
                        }
                    }
                }
            }
        }
    }
    false
}

/// Plain text in the first 512 bytes: no control characters other than whitespace.
fn looks_like_text(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(512)]
        .iter()
        .all(|b| !b.is_ascii_control() || b.is_ascii_whitespace())
}

/// Name formats we recognise but do not decode, so the message can say what the file is.
fn unrecognised(bytes: &[u8]) -> DecodeError {
    let head = &bytes[..bytes.len().min(512)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        let brand = &head[8..12];
        if [b"heic", b"heix", b"mif1", b"msf1", b"hevc"]
            .iter()
            .any(|b| brand == *b)
        {
            return DecodeError::UnsupportedFormat("HEIC/HEIF");
        }
        if brand == b"avif" {
            return DecodeError::UnsupportedFormat("AVIF");
        }
    }
    if text.contains("<svg") {
        return DecodeError::UnsupportedFormat("SVG");
    }
    DecodeError::NotAnImage
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Avif => "AVIF",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Tiff => "TIFF",
        ImageFormat::Ico => "ICO",
        ImageFormat::Hdr => "HDR",
        ImageFormat::OpenExr => "OpenEXR",
        ImageFormat::Pnm => "PNM",
        ImageFormat::Tga => "TGA",
        ImageFormat::Dds => "DDS",
        ImageFormat::Qoi => "QOI",
        ImageFormat::Farbfeld => "Farbfeld",
        _ => "these",
    }
}

fn flatten_onto_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let a = u16::from(a);
        let over = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        Rgb([over(r), over(g), over(b)])
    })
}

/// Output file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Png,
    /// JPEG with the given quality (1–100).
    Jpeg(u8),
    /// Lossless WebP.
    WebP,
}

impl OutputFormat {
    /// The format a file extension asks for (`png`, `jpg`/`jpeg`, `webp`), JPEG at quality 92.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "png" => Some(Self::Png),
            "jpg" | "jpeg" => Some(Self::Jpeg(92)),
            "webp" => Some(Self::WebP),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg(_) => "jpg",
            Self::WebP => "webp",
        }
    }
}

/// Encode an RGB image. Fails only for images no encoder can represent (e.g. JPEG over 65535 px).
pub fn encode(image: &RgbImage, format: OutputFormat) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Vec::new();
    let (w, h) = image.dimensions();
    let color = image::ExtendedColorType::Rgb8;
    match format {
        OutputFormat::Png => PngEncoder::new(&mut out).write_image(image, w, h, color)?,
        OutputFormat::Jpeg(quality) => {
            JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
                .write_image(image, w, h, color)?
        }
        OutputFormat::WebP => {
            WebPEncoder::new_lossless(&mut out).write_image(image, w, h, color)?
        }
    }
    Ok(out)
}

/// Rows of images side by side (e.g. input | output), with a thin gap.
pub fn grid(rows: &[Vec<RgbImage>]) -> RgbImage {
    const GAP: u32 = 4;
    let cell_w = rows
        .iter()
        .flatten()
        .map(RgbImage::width)
        .max()
        .unwrap_or(1);
    let cell_h = rows
        .iter()
        .flatten()
        .map(RgbImage::height)
        .max()
        .unwrap_or(1);
    let cols = rows.iter().map(Vec::len).max().unwrap_or(1) as u32;
    let width = cols * cell_w + (cols + 1) * GAP;
    let height = rows.len() as u32 * cell_h + (rows.len() as u32 + 1) * GAP;
    let mut out = RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    for (r, row) in rows.iter().enumerate() {
        for (c, image) in row.iter().enumerate() {
            let x = GAP + c as u32 * (cell_w + GAP);
            let y = GAP + r as u32 * (cell_h + GAP);
            image::imageops::overlay(&mut out, image, i64::from(x), i64::from(y));
        }
    }
    out
}
