//! `portraitist styles`: the built-in packs and those of the models folder.

use std::path::Path;

use anyhow::Result;

use portraitist::pack::{Index, PackKind};

pub fn run(models: &Path) -> Result<()> {
    let index = Index::available(models)?;
    if index.styles.is_empty() {
        println!(
            "No styles in {} and none built in (train one with `portraitist train`).",
            models.display()
        );
        return Ok(());
    }
    let in_folder = Index::load(models)?;
    for entry in &index.styles {
        let builtin = if in_folder.styles.iter().any(|s| s.id == entry.id) {
            ""
        } else {
            " [built in]"
        };
        let default = if index.default_pack() == Some(entry.id.as_str()) {
            " (default)"
        } else {
            ""
        };
        let kind = match entry.kind {
            PackKind::Transfer if entry.look.is_some() => {
                " [colour grade: an exact formula, no network]"
            }
            PackKind::Transfer => "",
            PackKind::Noise => " [noise: new portraits with `portraitist generate`]",
        };
        println!("{:<16} {}{default}{builtin}{kind}", entry.id, entry.title);
        if !entry.description.is_empty() {
            println!("{:<16} {}", "", entry.description);
        }
        // A multi-style pack: each style by `PACK:STYLE`; mixes as `PACK:A=0.7,B=0.3`.
        for style in &entry.styles {
            println!(
                "  {:<14} {}",
                format!("{}:{}", entry.id, style.id),
                style.title
            );
        }
        if let [a, b, ..] = entry.styles.as_slice() {
            println!(
                "{:<16} mix styles with --style {}:{}=0.7,{}=0.3",
                "", entry.id, a.id, b.id
            );
        }
    }
    Ok(())
}
