//! Decoding user photos: orientation, formats, and clear refusals.

use crate::common;

use std::fs;

use image::{Rgb, RgbImage, Rgba, RgbaImage};
use portraitist::image_io::{DecodeError, OutputFormat, decode, encode};

/// Insert an EXIF block with the given orientation right after the JPEG's start marker.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend(1u16.to_be_bytes()); // one IFD entry
    tiff.extend(0x0112u16.to_be_bytes()); // Orientation
    tiff.extend(3u16.to_be_bytes()); // SHORT
    tiff.extend(1u32.to_be_bytes());
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0]);
    tiff.extend(0u32.to_be_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_turns_the_photo_upright() {
    let jpeg = fs::read(common::fixture("astronaut.jpg")).unwrap();
    let plain = decode(&jpeg).unwrap();
    assert_eq!(plain.dimensions(), (227, 229));
    // 6: the camera was turned; the stored image must be rotated 90° clockwise to display.
    let rotated = decode(&with_exif_orientation(&jpeg, 6)).unwrap();
    assert_eq!(rotated.dimensions(), (229, 227));
    let expected = image::imageops::rotate90(&plain);
    assert_eq!(rotated, expected);
    let mirrored = decode(&with_exif_orientation(&jpeg, 2)).unwrap();
    assert_eq!(mirrored, image::imageops::flip_horizontal(&plain));
}

#[test]
fn transparency_is_flattened_onto_white() {
    let mut rgba = RgbaImage::from_pixel(20, 20, Rgba([255, 0, 0, 255]));
    rgba.put_pixel(0, 0, Rgba([0, 0, 0, 0]));
    rgba.put_pixel(1, 0, Rgba([0, 0, 0, 128]));
    let mut png = Vec::new();
    rgba.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let rgb = decode(&png).unwrap();
    assert_eq!(rgb.get_pixel(0, 0), &Rgb([255, 255, 255]));
    assert_eq!(rgb.get_pixel(1, 0), &Rgb([127, 127, 127]));
    assert_eq!(rgb.get_pixel(5, 5), &Rgb([255, 0, 0]));
}

#[test]
fn every_output_format_round_trips() {
    let photo = common::astronaut();
    for format in [
        OutputFormat::Png,
        OutputFormat::WebP,
        OutputFormat::Jpeg(95),
    ] {
        let back = decode(&encode(&photo, format).unwrap()).unwrap();
        assert_eq!(back.dimensions(), photo.dimensions());
        let tolerance = if format == OutputFormat::Jpeg(95) {
            4.0
        } else {
            0.0
        };
        assert!(
            common::mean_abs_diff(&back, &photo) <= tolerance,
            "{format:?}"
        );
    }
}

#[test]
fn gif_decodes_its_first_frame() {
    let frame = RgbImage::from_pixel(32, 24, Rgb([0, 0, 255]));
    let mut gif = Vec::new();
    image::DynamicImage::ImageRgb8(frame)
        .write_to(&mut std::io::Cursor::new(&mut gif), image::ImageFormat::Gif)
        .unwrap();
    let rgb = decode(&gif).unwrap();
    assert_eq!(rgb.dimensions(), (32, 24));
    assert_eq!(rgb.get_pixel(3, 3), &Rgb([0, 0, 255]));
}

#[test]
fn formats_we_do_not_read_are_named() {
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
    assert_eq!(
        decode(&heic),
        Err(DecodeError::UnsupportedFormat("HEIC/HEIF"))
    );
    let svg = b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec();
    assert_eq!(decode(&svg), Err(DecodeError::UnsupportedFormat("SVG")));
    let mut bmp = b"BM".to_vec();
    bmp.extend([0u8; 64]);
    assert_eq!(decode(&bmp), Err(DecodeError::UnsupportedFormat("BMP")));
    assert!(
        decode(&bmp)
            .unwrap_err()
            .to_string()
            .contains("convert it to JPEG, PNG or WebP")
    );
}

#[test]
fn tiny_and_enormous_images_are_refused_by_size() {
    let mut thin = Vec::new();
    RgbImage::new(1, 10_000)
        .write_to(
            &mut std::io::Cursor::new(&mut thin),
            image::ImageFormat::Png,
        )
        .unwrap();
    assert_eq!(
        decode(&thin),
        Err(DecodeError::TooSmall {
            width: 1,
            height: 10_000
        })
    );
}
