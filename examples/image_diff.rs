//! Compares two image files pixel by pixel, for the browser tests (Node has no image decoder):
//! `cargo run --example image_diff -- A B` prints one JSON line with both sizes and the mean and
//! largest absolute difference in 8-bit levels over the RGB channels (null when sizes differ).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [a, b] = args.as_slice() else {
        eprintln!("usage: image_diff A B");
        return ExitCode::from(2);
    };
    let open = |path: &str| {
        image::open(path)
            .map(|i| i.into_rgb8())
            .map_err(|e| format!("{path}: {e}"))
    };
    let (a, b) = match (open(a), open(b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let (mean, max) = if a.dimensions() == b.dimensions() {
        let diffs: Vec<u8> = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| x.abs_diff(*y))
            .collect();
        let sum: u64 = diffs.iter().map(|&d| d as u64).sum();
        let max = diffs.iter().copied().max().unwrap_or(0);
        (
            format!("{:.4}", sum as f64 / diffs.len().max(1) as f64),
            max.to_string(),
        )
    } else {
        ("null".into(), "null".into())
    };
    println!(
        "{{\"a\":[{},{}],\"b\":[{},{}],\"mean\":{mean},\"max\":{max}}}",
        a.width(),
        a.height(),
        b.width(),
        b.height()
    );
    ExitCode::SUCCESS
}
