//! One style of the gallery: its preview, title and description, selected on click.

use leptos::prelude::*;

use super::runner::run;
use super::state::{Card, Ui};

#[component]
pub(super) fn StyleCard(ui: Ui, style: Card) -> impl IntoView {
    let id = StoredValue::new(style.id.clone());
    let is_selected = move || ui.selected.get().as_deref() == Some(id.get_value().as_str());
    let preview = style.preview.clone();
    let alt = format!("{} applied to a sample portrait", style.title);
    view! {
        <button
            type="button"
            class="style"
            class:selected=is_selected
            aria-pressed=move || is_selected().to_string()
            title=style.description.clone()
            data-style=style.id.clone()
            on:click=move |_| {
                if ui.selected.get_untracked().as_deref() != Some(id.get_value().as_str()) {
                    ui.mix_with.set(None);
                }
                ui.selected.set(Some(id.get_value()));
                run(ui);
            }
        >
            {match preview {
                Some(src) => view! { <img src=src alt=alt /> }.into_any(),
                None => view! { <span class="no-preview" aria-hidden="true"></span> }.into_any(),
            }}
            <span class="title">{style.title.clone()}</span>
            {style.look.then(|| view! {
                <span class="tag" title="Applied by an exact formula: no network runs">"colour grade"</span>
            })}
        </button>
    }
}
