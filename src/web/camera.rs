//! The camera as a photo source: open, show, take the picture, close.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlVideoElement;

use super::browser;
use super::runner::set_photo;
use super::state::Ui;

pub(super) fn video(ui: Ui) -> Option<HtmlVideoElement> {
    ui.video.get_untracked().map(|v| v.unchecked_into())
}

pub(super) async fn open_camera(ui: Ui) {
    let Some(video) = video(ui) else { return };
    ui.error.set(None);
    match browser::camera_stream().await {
        Ok(stream) => {
            video.set_src_object(Some(&stream));
            ui.camera.set(true);
            ui.status
                .set("Frame your face, then take the picture.".into());
        }
        Err(e) => ui.fail(format!("The camera is not available: {e}")),
    }
}

pub(super) fn close_camera(ui: Ui) {
    if let Some(video) = video(ui) {
        browser::stop_camera(&video);
    }
    ui.camera.set(false);
}

pub(super) fn take_picture(ui: Ui) {
    let Some(video) = video(ui) else { return };
    match browser::grab_frame(&video) {
        Ok(photo) => {
            close_camera(ui);
            set_photo(ui, photo, "camera.png".into());
        }
        Err(e) => ui.fail(format!("Could not take the picture: {e}")),
    }
}
