//! One style of the gallery: its preview, title and description, selected on click.

use leptos::prelude::*;

use super::runner::run;
use super::state::Ui;
use crate::pack::IndexEntry;

#[component]
pub(super) fn StyleCard(ui: Ui, style: IndexEntry) -> impl IntoView {
    let id = StoredValue::new(style.id.clone());
    let is_selected = move || ui.selected.get().as_deref() == Some(id.get_value().as_str());
    let preview = style
        .preview
        .as_ref()
        .map(|p| format!("models/{}/{}", style.id, p));
    let alt = format!("{} applied to a sample portrait", style.title);
    view! {
        <button
            type="button"
            class="style"
            class:selected=is_selected
            aria-pressed=move || is_selected().to_string()
            title=style.description.clone()
            on:click=move |_| {
                ui.selected.set(Some(id.get_value()));
                run(ui);
            }
        >
            {match preview {
                Some(src) => view! { <img src=src alt=alt /> }.into_any(),
                None => view! { <span class="no-preview" aria-hidden="true"></span> }.into_any(),
            }}
            <span class="title">{style.title.clone()}</span>
        </button>
    }
}
