// Starts the app. An external module rather than trunk's inline loader, so the page's
// Content-Security-Policy can refuse every inline script.
import init from './portraitist-web.js';

init({ module_or_path: new URL('./portraitist-web_bg.wasm', import.meta.url) }).catch((err) => {
  const note = document.createElement('p');
  note.className = 'fallback';
  note.setAttribute('role', 'alert');
  note.textContent = `Portraitist could not start in this browser: ${err}. ` +
    'It needs WebAssembly (any current Chrome, Edge, Firefox or Safari).';
  document.body.append(note);
});
