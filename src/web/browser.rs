//! Thin wrappers over Web APIs, returning readable errors instead of JS values.

use js_sys::Uint8Array;
use wasm_bindgen::{Clamped, JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, BlobPropertyBag, HtmlAnchorElement, HtmlCanvasElement, HtmlVideoElement, ImageData,
    MediaStream, MediaStreamConstraints, MediaStreamTrack, Response, Url,
};

pub fn describe(value: JsValue) -> String {
    value
        .as_string()
        .or_else(|| {
            js_sys::JSON::stringify(&value)
                .ok()
                .and_then(|s| s.as_string())
        })
        .unwrap_or_else(|| "unknown error".into())
}

pub fn window() -> web_sys::Window {
    web_sys::window().expect("the app runs in a window")
}

/// GET a same-origin URL as bytes.
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let response = JsFuture::from(window().fetch_with_str(url))
        .await
        .map_err(|e| format!("{url}: {}", describe(e)))?;
    let response: Response = response
        .dyn_into()
        .map_err(|_| format!("{url}: not a response"))?;
    if !response.ok() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let buffer = response
        .array_buffer()
        .map_err(|e| format!("{url}: {}", describe(e)))?;
    let buffer = JsFuture::from(buffer)
        .await
        .map_err(|e| format!("{url}: {}", describe(e)))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

pub async fn file_bytes(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(describe)?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Paint an RGB image onto a canvas, resizing the canvas to it.
pub fn paint(canvas: &HtmlCanvasElement, image: &image::RgbImage) -> Result<(), String> {
    let (w, h) = image.dimensions();
    canvas.set_width(w);
    canvas.set_height(h);
    let ctx = context_2d(canvas)?;
    let mut rgba = Vec::with_capacity((w * h * 4) as usize);
    for p in image.pixels() {
        rgba.extend_from_slice(&[p.0[0], p.0[1], p.0[2], 255]);
    }
    let data =
        ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), w, h).map_err(describe)?;
    ctx.put_image_data(&data, 0.0, 0.0).map_err(describe)
}

/// A `blob:` address for bytes (a preview image kept in memory), valid while the page lives.
pub fn object_url(bytes: &[u8], mime: &str) -> Result<String, String> {
    let parts = js_sys::Array::of1(&Uint8Array::from(bytes));
    let options = BlobPropertyBag::new();
    options.set_type(mime);
    let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(describe)?;
    Url::create_object_url_with_blob(&blob).map_err(describe)
}

/// A key → bytes store in this browser's IndexedDB (database `portraitist`, version 1, whose
/// one object store is the name given; a second store would need a new version): what the page
/// keeps across reloads and offline.
pub struct Store {
    db: web_sys::IdbDatabase,
    name: &'static str,
}

/// An IndexedDB request's result once it succeeds. The handlers reach the request through
/// their event, so the one that never runs holds nothing but the promise's two functions.
async fn finished(request: &web_sys::IdbRequest) -> Result<JsValue, String> {
    fn source(event: &web_sys::Event) -> Option<web_sys::IdbRequest> {
        event.target()?.dyn_into().ok()
    }
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        let on_success =
            wasm_bindgen::closure::Closure::once_into_js(move |event: web_sys::Event| {
                let result = source(&event).and_then(|r| r.result().ok());
                let _ = resolve.call1(&JsValue::NULL, &result.unwrap_or(JsValue::UNDEFINED));
            });
        let on_error =
            wasm_bindgen::closure::Closure::once_into_js(move |event: web_sys::Event| {
                let error = source(&event)
                    .and_then(|r| r.error().ok().flatten())
                    .map(|e| e.message());
                let _ = reject.call1(
                    &JsValue::NULL,
                    &JsValue::from_str(&error.unwrap_or_default()),
                );
            });
        request.set_onsuccess(Some(on_success.unchecked_ref()));
        request.set_onerror(Some(on_error.unchecked_ref()));
    });
    JsFuture::from(promise).await.map_err(describe)
}

/// A read-write transaction's end: committed, or aborted (a failed request aborts it, and
/// the transaction's error is set by then).
async fn committed(transaction: &web_sys::IdbTransaction) -> Result<(), String> {
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        let on_complete = wasm_bindgen::closure::Closure::once_into_js(move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
        let on_abort =
            wasm_bindgen::closure::Closure::once_into_js(move |event: web_sys::Event| {
                let transaction: Option<web_sys::IdbTransaction> =
                    event.target().and_then(|t| t.dyn_into().ok());
                let error = transaction.and_then(|t| t.error()).map(|e| e.message());
                let _ = reject.call1(
                    &JsValue::NULL,
                    &JsValue::from_str(&error.unwrap_or_else(|| "the write was cancelled".into())),
                );
            });
        transaction.set_oncomplete(Some(on_complete.unchecked_ref()));
        transaction.set_onabort(Some(on_abort.unchecked_ref()));
    });
    JsFuture::from(promise).await.map(|_| ()).map_err(describe)
}

impl Store {
    pub async fn open(name: &'static str) -> Result<Self, String> {
        let fail = |e: JsValue| {
            format!(
                "this browser's storage (IndexedDB) is not available: {}",
                describe(e)
            )
        };
        let factory = window()
            .indexed_db()
            .map_err(fail)?
            .ok_or_else(|| "this browser has no storage for the page (IndexedDB)".to_string())?;
        let request = factory.open_with_u32("portraitist", 1).map_err(fail)?;
        let upgrading = request.clone();
        let on_upgrade = wasm_bindgen::closure::Closure::once_into_js(move || {
            if let Ok(db) = upgrading.result()
                && let Ok(db) = db.dyn_into::<web_sys::IdbDatabase>()
                && !db.object_store_names().contains(name)
            {
                let _ = db.create_object_store(name);
            }
        });
        request.set_onupgradeneeded(Some(on_upgrade.unchecked_ref()));
        let db = finished(&request)
            .await
            .map_err(|e| format!("cannot open the page's storage: {e}"))?;
        let db = db
            .dyn_into()
            .map_err(|_| "the page's storage gave no database".to_string())?;
        Ok(Self { db, name })
    }

    fn objects(
        &self,
        mode: web_sys::IdbTransactionMode,
    ) -> Result<(web_sys::IdbTransaction, web_sys::IdbObjectStore), String> {
        let transaction = self
            .db
            .transaction_with_str_and_mode(self.name, mode)
            .map_err(describe)?;
        let store = transaction.object_store(self.name).map_err(describe)?;
        Ok((transaction, store))
    }

    /// Every value, in key order.
    pub async fn all(&self) -> Result<Vec<Vec<u8>>, String> {
        let (_, store) = self.objects(web_sys::IdbTransactionMode::Readonly)?;
        let values = finished(&store.get_all().map_err(describe)?).await?;
        let values: js_sys::Array = values.dyn_into().map_err(|_| "not a list".to_string())?;
        Ok(values
            .iter()
            .map(|v| Uint8Array::new(&v).to_vec())
            .collect())
    }

    pub async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), String> {
        let (transaction, store) = self.objects(web_sys::IdbTransactionMode::Readwrite)?;
        store
            .put_with_key(&Uint8Array::from(bytes), &JsValue::from_str(key))
            .map_err(describe)?;
        committed(&transaction)
            .await
            .map_err(|e| format!("could not keep it in this browser: {e}"))
    }

    pub async fn delete(&self, key: &str) -> Result<(), String> {
        let (transaction, store) = self.objects(web_sys::IdbTransactionMode::Readwrite)?;
        store.delete(&JsValue::from_str(key)).map_err(describe)?;
        committed(&transaction).await
    }
}

/// Offer bytes as a download.
pub fn download(bytes: &[u8], mime: &str, name: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&Uint8Array::from(bytes));
    let options = BlobPropertyBag::new();
    options.set_type(mime);
    let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(describe)?;
    let url = Url::create_object_url_with_blob(&blob).map_err(describe)?;
    let document = window().document().ok_or("no document")?;
    let a: HtmlAnchorElement = document
        .create_element("a")
        .map_err(describe)?
        .dyn_into()
        .map_err(|_| "no anchor")?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    // Revoke later: some browsers start reading the blob only after the click returns.
    let revoke = wasm_bindgen::closure::Closure::once_into_js(move || {
        let _ = Url::revoke_object_url(&url);
    });
    window()
        .set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 60_000)
        .map_err(describe)?;
    Ok(())
}

/// The front camera's video stream (asks the user's permission).
pub async fn camera_stream() -> Result<MediaStream, String> {
    let devices = window()
        .navigator()
        .media_devices()
        .map_err(|_| "this browser gives no access to cameras".to_string())?;
    let constraints = MediaStreamConstraints::new();
    let video = js_sys::Object::new();
    js_sys::Reflect::set(&video, &"facingMode".into(), &"user".into()).map_err(describe)?;
    constraints.set_video(&video);
    constraints.set_audio(&false.into());
    let promise = devices
        .get_user_media_with_constraints(&constraints)
        .map_err(describe)?;
    let stream = JsFuture::from(promise).await.map_err(describe_dom)?;
    stream.dyn_into().map_err(|_| "not a media stream".into())
}

/// Stop the camera shown in `video`.
pub fn stop_camera(video: &HtmlVideoElement) {
    if let Some(stream) = video
        .src_object()
        .and_then(|s| s.dyn_into::<MediaStream>().ok())
    {
        for track in stream.get_tracks().iter() {
            if let Ok(track) = track.dyn_into::<MediaStreamTrack>() {
                track.stop();
            }
        }
    }
    video.set_src_object(None);
}

/// The frame `video` shows now, as an image.
pub fn grab_frame(video: &HtmlVideoElement) -> Result<image::RgbImage, String> {
    let (w, h) = (video.video_width(), video.video_height());
    if w == 0 || h == 0 {
        return Err("the camera has not started yet".into());
    }
    let document = window().document().ok_or("no document")?;
    let canvas: HtmlCanvasElement = document
        .create_element("canvas")
        .map_err(describe)?
        .dyn_into()
        .map_err(|_| "no canvas")?;
    canvas.set_width(w);
    canvas.set_height(h);
    let ctx = context_2d(&canvas)?;
    ctx.draw_image_with_html_video_element(video, 0.0, 0.0)
        .map_err(describe)?;
    let rgba = ctx
        .get_image_data(0.0, 0.0, f64::from(w), f64::from(h))
        .map_err(describe)?
        .data();
    let rgb = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| "unexpected frame size".into())
}

/// DOM exceptions (e.g. a refused camera permission) carry their message in `message`.
fn describe_dom(value: JsValue) -> String {
    js_sys::Reflect::get(&value, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| describe(value))
}

fn context_2d(canvas: &HtmlCanvasElement) -> Result<web_sys::CanvasRenderingContext2d, String> {
    canvas
        .get_context("2d")
        .map_err(describe)?
        .ok_or("no 2d context")?
        .dyn_into::<web_sys::CanvasRenderingContext2d>()
        .map_err(|_| "no 2d context".into())
}

/// `performance.now()` of whatever global there is: a page, a worker, or Node (bench/dawn).
pub fn now_ms() -> f64 {
    let global = js_sys::global();
    js_sys::Reflect::get(&global, &"performance".into())
        .ok()
        .and_then(|performance| {
            let now: js_sys::Function = js_sys::Reflect::get(&performance, &"now".into())
                .ok()?
                .dyn_into()
                .ok()?;
            now.call0(&performance).ok()?.as_f64()
        })
        .unwrap_or(0.0)
}

/// Let the browser paint and handle input before the next chunk of work.
pub async fn yield_to_browser() {
    sleep_ms(0).await;
}

/// Let the browser run for at least `ms` milliseconds (a timer).
pub async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

/// Register the offline service worker (ignored where unsupported).
pub fn register_service_worker() {
    let navigator = window().navigator();
    let container = navigator.service_worker();
    let _ = container.register("sw.js");
}
