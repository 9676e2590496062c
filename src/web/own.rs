//! The user's own style packs: a pack archive (`portraitist export --format tar`, or one the page
//! made) chosen or dropped on the page joins the gallery, is kept in this browser (IndexedDB), and
//! is there again after a reload and offline, until removed. Nothing is uploaded.

use leptos::prelude::*;

use super::browser::{self, Store};
use super::runner::run;
use super::state::{Card, Ui};
use crate::pack::{IndexEntry, PackKind, StylePack};

/// The IndexedDB object store of the archives, by pack id.
const STORE: &str = "packs";

/// A pack's cards, its previews served from memory.
fn cards(pack: &StylePack, files: &[crate::pack::archive::PackFile]) -> Vec<Card> {
    let urls: Vec<(String, String)> = files
        .iter()
        .filter_map(|f| {
            let mime = if f.name.ends_with(".png") {
                "image/png"
            } else {
                "image/jpeg"
            };
            Some((f.name.clone(), browser::object_url(&f.bytes, mime).ok()?))
        })
        .collect();
    // A preview the archive lacks gets an empty address here, and no preview on its card.
    let url = |name: &str| {
        urls.iter()
            .find(|(n, _)| n == name)
            .map(|(_, url)| url.clone())
            .unwrap_or_default()
    };
    let mut cards = Card::of(&IndexEntry::of(&pack.manifest), true, &url);
    for card in &mut cards {
        if card.preview.as_deref() == Some("") {
            card.preview = None;
        }
    }
    cards
}

/// Take pack `id`'s cards out of the gallery, freeing their in-memory previews.
fn drop_cards(ui: Ui, id: &str) {
    ui.styles.update(|cards| {
        cards.retain(|c| {
            let gone = c.pack == id && c.own;
            if gone && let Some(url) = c.preview.as_deref().filter(|u| u.starts_with("blob:")) {
                let _ = web_sys::Url::revoke_object_url(url);
            }
            !gone
        })
    });
}

/// Check an archive and put its pack in the gallery (after the shipped ones), replacing an own
/// pack of the same id. Returns the pack's id.
fn show(ui: Ui, name: &str, bytes: Vec<u8>) -> Result<String, String> {
    let (pack, files) = StylePack::from_archive(name, &bytes).map_err(|e| e.to_string())?;
    let id = pack.manifest.id.clone();
    if pack.manifest.kind != PackKind::Transfer {
        return Err(format!(
            "{name}: the pack `{id}` makes new portraits from noise; only style packs (photo to \
             portrait) can be added to the gallery"
        ));
    }
    let shipped = ui
        .styles
        .with_untracked(|cards| cards.iter().any(|c| c.pack == id && !c.own));
    if shipped {
        return Err(format!(
            "{name}: a style pack that comes with the app is already called `{id}`; export yours \
             under another id"
        ));
    }
    let mut new_cards = cards(&pack, &files);
    // A pack learnt from a shipped one holds that pack's styles too: the gallery has those
    // already, so only the new ones are shown (each still mixes with all of its pack's styles).
    if let Some(base) = &pack.manifest.based_on {
        let shipped: Vec<String> = ui.styles.with_untracked(|cards| {
            cards
                .iter()
                .filter(|c| !c.own && &c.pack == base)
                .map(|c| c.id.clone())
                .collect()
        });
        let prefix = format!("{id}:");
        new_cards.retain(|card| {
            let style = card.id.strip_prefix(&prefix).unwrap_or(&card.id);
            !shipped.contains(&format!("{base}:{style}"))
        });
    }
    drop_cards(ui, &id);
    ui.styles.update(|cards| cards.extend(new_cards));
    ui.session.update_value(|s| {
        s.own.retain(|(p, _)| p.manifest.id != id);
        if s.pack.as_ref().is_some_and(|(p, _)| *p == id) {
            s.pack = None;
        }
        if s.stylizer
            .as_ref()
            .is_some_and(|(spec, _)| spec.split(':').next() == Some(id.as_str()))
        {
            s.stylizer = None;
        }
        s.own.push((pack, bytes));
    });
    Ok(id)
}

/// At start-up: the packs this browser kept.
pub(super) async fn restore(ui: Ui) {
    let kept = match Store::open(STORE).await {
        Ok(store) => store.all().await,
        Err(e) => Err(e),
    };
    match kept {
        Ok(archives) => {
            for bytes in archives {
                // A kept pack that no longer reads (a newer format, damage) is left out with a
                // message; the others still load.
                if let Err(e) = show(ui, "a kept style pack", bytes) {
                    ui.fail(e);
                }
            }
        }
        Err(e) => ui.fail(format!("Your own style packs could not be read: {e}")),
    }
}

/// A pack archive the user gave (or learnt): into the gallery, kept, selected, and run on the
/// photo. Whether it joined the gallery (if not, the page shows why).
pub(super) async fn add(ui: Ui, name: String, bytes: Vec<u8>) -> bool {
    let kept = bytes.clone();
    match show(ui, &name, bytes) {
        Ok(id) => {
            let saved = match Store::open(STORE).await {
                Ok(store) => store.put(&id, &kept).await,
                Err(e) => Err(e),
            };
            let first = ui
                .styles
                .with_untracked(|cards| cards.iter().find(|c| c.pack == id).map(|c| c.id.clone()));
            ui.mix_with.set(None);
            ui.selected.set(first);
            ui.error.set(None);
            match saved {
                Ok(()) => ui.status.set(format!(
                    "Added the style pack `{id}` from {name}; it stays in this browser."
                )),
                Err(e) => ui.fail(format!("Added `{id}` for this visit only: {e}")),
            }
            run(ui);
            true
        }
        Err(e) => {
            ui.fail(e);
            false
        }
    }
}

/// Rename the style `card` (`pack:style`, or a one-style pack's `pack`) of one of the user's
/// packs: the pack is written again with the new title (its weights unchanged) and kept.
pub(super) async fn rename(ui: Ui, card: String, title: String) {
    let title = title.trim().to_string();
    if title.is_empty() {
        return;
    }
    let (pack_id, style_id) = match card.split_once(':') {
        Some((p, s)) => (p.to_string(), Some(s.to_string())),
        None => (card.clone(), None),
    };
    let Some(bytes) = ui.session.with_value(|s| {
        s.own
            .iter()
            .find(|(p, _)| p.manifest.id == pack_id)
            .map(|(_, b)| b.clone())
    }) else {
        return;
    };
    let renamed = StylePack::from_archive(&pack_id, &bytes).and_then(|(mut pack, files)| {
        let manifest = &mut pack.manifest;
        match &style_id {
            Some(style) => {
                if let Some(info) = manifest.styles.iter_mut().find(|s| &s.id == style) {
                    // A learnt pack's title is "BASE + STYLE": it follows the style's.
                    if let Some(base) = manifest.title.strip_suffix(&format!(" + {}", info.title)) {
                        manifest.title = format!("{base} + {title}");
                    }
                    info.title = title.clone();
                }
            }
            None => manifest.title = title.clone(),
        }
        pack.to_archive(&files)
    });
    let archive = match renamed {
        Ok(archive) => archive,
        Err(e) => return ui.fail(format!("`{pack_id}` could not be renamed: {e}")),
    };
    if let Err(e) = show(ui, &format!("{pack_id}.tar"), archive.clone()) {
        return ui.fail(e);
    }
    ui.selected.set(Some(card));
    let saved = match Store::open(STORE).await {
        Ok(store) => store.put(&pack_id, &archive).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(()) => ui.status.set(format!("Renamed it “{title}”.")),
        Err(e) => ui.fail(format!("Renamed for this visit only: {e}")),
    }
}

/// Whether `id` is one of the user's packs.
pub(super) fn has(ui: Ui, id: &str) -> bool {
    ui.session
        .with_value(|s| s.own.iter().any(|(p, _)| p.manifest.id == id))
}

/// Remove one of the user's packs from the gallery and from this browser.
pub(super) async fn remove(ui: Ui, id: String) {
    drop_cards(ui, &id);
    ui.session.update_value(|s| {
        s.own.retain(|(p, _)| p.manifest.id != id);
        if s.pack.as_ref().is_some_and(|(p, _)| *p == id) {
            s.pack = None;
        }
    });
    if ui
        .selected
        .get_untracked()
        .is_some_and(|s| s.split(':').next() == Some(id.as_str()))
    {
        let first = ui
            .styles
            .with_untracked(|cards| cards.first().map(|c| c.id.clone()));
        ui.mix_with.set(None);
        ui.selected.set(first);
        run(ui);
    }
    let removed = match Store::open(STORE).await {
        Ok(store) => store.delete(&id).await,
        Err(e) => Err(e),
    };
    match removed {
        Ok(()) => ui
            .status
            .set(format!("Removed the style pack `{id}` from this browser.")),
        Err(e) => ui.fail(format!(
            "`{id}` could not be removed from this browser: {e}"
        )),
    }
}

/// The archive of one of the user's packs, as it was added: a download gives it back.
pub(super) fn download(ui: Ui, id: &str) {
    let bytes = ui.session.with_value(|s| {
        s.own
            .iter()
            .find(|(p, _)| p.manifest.id == id)
            .map(|(_, bytes)| bytes.clone())
    });
    if let Some(bytes) = bytes
        && let Err(e) = browser::download(&bytes, "application/x-tar", &format!("{id}.tar"))
    {
        ui.fail(e);
    }
}

/// The pack `id` when it is one of the user's.
pub(super) fn pack(ui: Ui, id: &str) -> Option<StylePack> {
    ui.session.with_value(|s| {
        s.own
            .iter()
            .find(|(p, _)| p.manifest.id == id)
            .map(|(p, _)| p.clone())
    })
}
