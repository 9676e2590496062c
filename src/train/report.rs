//! What a run leaves for people to look at: `losses.csv`, sample grids and a loss plot.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::RgbImage;
use plotters::prelude::*;

/// Append-only loss log. On resume, rows after the checkpoint's step are dropped so a killed
/// run leaves no duplicates.
pub struct LossLog {
    path: PathBuf,
    columns: Vec<&'static str>,
}

impl LossLog {
    pub fn open(
        path: &Path,
        columns: &[&'static str],
        resume_step: Option<u64>,
    ) -> std::io::Result<Self> {
        let header = format!("step,{}\n", columns.join(","));
        let keep = match (resume_step, fs::read_to_string(path)) {
            (Some(step), Ok(text)) => {
                let mut kept = header.clone();
                for line in text.lines().skip(1) {
                    let row_step = line.split(',').next().and_then(|s| s.parse::<u64>().ok());
                    if row_step.is_some_and(|s| s <= step) {
                        kept.push_str(line);
                        kept.push('\n');
                    }
                }
                kept
            }
            _ => header,
        };
        crate::atomic::write(path, keep.as_bytes())?;
        Ok(Self {
            path: path.to_path_buf(),
            columns: columns.to_vec(),
        })
    }

    /// Read an existing log without touching it.
    pub fn open_read_only(path: &Path, columns: &[&'static str]) -> std::io::Result<Self> {
        fs::metadata(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            columns: columns.to_vec(),
        })
    }

    pub fn append(&self, step: u64, values: &[f32]) -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new().append(true).open(&self.path)?;
        let row: Vec<String> = values.iter().map(|v| format!("{v:.5}")).collect();
        writeln!(file, "{step},{}", row.join(","))
    }

    /// All rows as (step, values).
    pub fn read(&self) -> Vec<(u64, Vec<f32>)> {
        fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut parts = line.split(',');
                let step = parts.next()?.parse().ok()?;
                let values: Vec<f32> = parts.filter_map(|v| v.parse().ok()).collect();
                (values.len() == self.columns.len()).then_some((step, values))
            })
            .collect()
    }

    pub fn columns(&self) -> &[&'static str] {
        &self.columns
    }
}

/// A font for plot labels, from the system if one is installed; without one, plots have no text.
fn font_available() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        let candidates = [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/System/Library/Fonts/Supplemental/Arial.ttf",
            "C:\\Windows\\Fonts\\arial.ttf",
        ];
        candidates
            .iter()
            .find_map(|p| fs::read(p).ok())
            .is_some_and(|bytes| {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            })
    })
}

/// Plot every loss column against the step into a PNG.
pub fn plot_losses(log: &LossLog, path: &Path) -> Result<(), String> {
    let rows = log.read();
    if rows.len() < 2 {
        return Ok(());
    }
    let (w, h) = (900u32, 480u32);
    let mut buffer = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let max_step = rows.last().map(|r| r.0).unwrap_or(1).max(1);
        let max_loss = rows
            .iter()
            .flat_map(|r| r.1.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0f32, f32::max)
            .max(1e-3);
        let labels = font_available();
        let mut builder = ChartBuilder::on(&root);
        builder.margin(12);
        if labels {
            builder
                .caption("training losses", ("sans-serif", 20))
                .x_label_area_size(30)
                .y_label_area_size(50);
        }
        let mut chart = builder
            .build_cartesian_2d(0u64..max_step, 0f32..max_loss * 1.05)
            .map_err(|e| e.to_string())?;
        let mut mesh = chart.configure_mesh();
        if labels {
            mesh.x_desc("step");
        } else {
            mesh.disable_x_axis().disable_y_axis();
        }
        mesh.draw().map_err(|e| e.to_string())?;
        for (i, name) in log.columns().iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let series = chart
                .draw_series(LineSeries::new(
                    rows.iter().map(|r| (r.0, r.1[i])),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
            if labels {
                series
                    .label(*name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
        }
        if labels {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    let image = RgbImage::from_raw(w, h, buffer).ok_or("plot buffer size")?;
    let png = crate::image_io::encode(&image, crate::image_io::OutputFormat::Png)
        .map_err(|e| e.to_string())?;
    crate::atomic::write(path, &png).map_err(|e| e.to_string())
}
