// Biblioverse page behaviour. No inline scripts: the Content-Security-Policy forbids them.

// After htmx swaps in a result, move focus to what the server marked (a "Saved." message,
// the first invalid field, a row's new status), so keyboard and screen-reader users land on
// the outcome instead of falling back to the top of the page.
document.addEventListener("htmx:afterSettle", () => {
  const target = document.querySelector("[data-focus-after-swap]");
  if (target) {
    target.removeAttribute("data-focus-after-swap");
    target.focus();
  }
});

// After a search in the page (the form, a facet, a page of results), focus goes to the
// results' heading: the reader hears how many were found and reads on. A search that opens
// the page leaves the focus at its top, where the first Tab is "Skip to results".
document.addEventListener("htmx:afterSettle", (event) => {
  if (event.detail.target && event.detail.target.id === "results") {
    const heading = document.getElementById("results-h");
    if (heading) heading.focus();
  }
});

// A table wider than the screen scrolls in its box (.table-scroll); the keyboard must reach
// it too (WCAG 2.1.1): such a box becomes a named region in the tab order, and stops being
// one when it fits again.
function focusableScrolls() {
  for (const box of document.querySelectorAll(".table-scroll")) {
    if (box.scrollWidth > box.clientWidth + 1) {
      if (box.hasAttribute("tabindex")) continue;
      const named = box.querySelector("caption") || box.closest("section, article")?.querySelector("h2, h3");
      box.tabIndex = 0;
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", named ? named.textContent.trim() : document.title);
      box.dataset.scrolls = "1";
    } else if (box.dataset.scrolls) {
      ["tabindex", "role", "aria-label", "data-scrolls"].forEach((a) => box.removeAttribute(a));
    }
  }
}
document.addEventListener("DOMContentLoaded", focusableScrolls);
document.addEventListener("htmx:afterSettle", focusableScrolls);
window.addEventListener("resize", focusableScrolls);
// A step that cannot be undone (cancelling a hold, closing an inventory) asks first: a form
// with data-confirm is sent only when the person says yes. Capturing, so that htmx's own
// submit handlers never see a refused one.
document.addEventListener(
  "submit",
  (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  },
  true,
);

// The desk answers a refused scan (no such copy, not allowed here) with its working area
// and the reason, whatever the status: swap it, so the reason shows and the cursor returns
// to the barcode field. Other errors (an expired form) go to the alert region as usual.
document.addEventListener("htmx:beforeSwap", (event) => {
  const d = event.detail;
  if (!d.target || d.target.id !== "desk-work" || d.xhr.status >= 500) return;
  if (typeof d.serverResponse === "string" && d.serverResponse.includes('id="desk-work"')) {
    d.shouldSwap = true;
    d.isError = false;
  }
});

// A desk's hold or transit slip: the button prints the page, which prints only the slip.
document.addEventListener("click", (event) => {
  if (event.target instanceof Element && event.target.closest("[data-print]")) window.print();
});

// Errors htmx does not swap (an expired form, a busy server, a lost connection) are said in
// the page's alert region rather than silently ignored.
function showError(xhr) {
  const flash = document.getElementById("flash");
  if (!flash) return;
  flash.replaceChildren();
  const type = (xhr && xhr.getResponseHeader("content-type")) || "";
  if (type.startsWith("text/html") && xhr.responseText.includes("data-flash")) {
    const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
    const message = doc.querySelector("[data-flash]");
    if (message) {
      flash.appendChild(document.importNode(message, true));
      return;
    }
  }
  const p = document.createElement("p");
  p.className = "flash-error";
  p.setAttribute("role", "alert");
  p.textContent = document.body.dataset.errorMessage;
  flash.appendChild(p);
}
document.addEventListener("htmx:responseError", (event) => showError(event.detail.xhr));
document.addEventListener("htmx:sendError", () => showError(null));
document.addEventListener("htmx:beforeRequest", () => {
  const flash = document.getElementById("flash");
  if (flash) flash.replaceChildren();
});

// A page that comes back with errors puts focus on its summary, which links to the fields.
document.addEventListener("DOMContentLoaded", () => {
  const summary = document.querySelector("[data-autofocus]");
  if (summary) summary.focus();
});

// Borrow with the phone: read the copy's barcode with the camera where the browser has a
// BarcodeDetector (Chrome and Edge on Android, desktop Chrome); elsewhere the reader types
// the number, which always works. A barcode read fills the field and sends the form.
(function cameraBorrow() {
  const box = document.getElementById("camera");
  const words = document.getElementById("camera-words");
  if (!box || !words || !("BarcodeDetector" in window) || !navigator.mediaDevices) return;
  const start = document.getElementById("camera-start");
  const video = document.getElementById("camera-view");
  const status = document.getElementById("camera-status");
  const field = document.getElementById("borrow-barcode");
  const form = document.getElementById("borrow-form");
  box.hidden = false;
  start.addEventListener("click", async () => {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch (e) {
      status.textContent = words.dataset.denied;
      field.focus();
      return;
    }
    const detector = new window.BarcodeDetector({
      formats: ["code_128", "code_39", "ean_13", "ean_8", "codabar", "itf", "qr_code"],
    });
    video.srcObject = stream;
    video.hidden = false;
    start.hidden = true;
    status.textContent = words.dataset.looking;
    await video.play();
    const stop = () => stream.getTracks().forEach((t) => t.stop());
    const look = async () => {
      try {
        const codes = await detector.detect(video);
        const code = codes.map((c) => c.rawValue.trim()).find((v) => /^[A-Za-z0-9-]{1,32}$/.test(v));
        if (code) {
          stop();
          video.hidden = true;
          field.value = code;
          status.textContent = words.dataset.found.replace("%(code)s", code);
          form.requestSubmit();
          return;
        }
      } catch (e) {
        /* a frame that could not be read: try the next one */
      }
      window.setTimeout(look, 200);
    };
    look();
  });
})();

// "Print" buttons (the map page): the browser's own print dialog.
document.addEventListener("click", (event) => {
  if (event.target instanceof Element && event.target.closest("[data-print]")) window.print();
});
