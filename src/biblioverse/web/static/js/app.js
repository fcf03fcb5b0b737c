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
