// After htmx replaces a region, move keyboard focus to any status message it brought, so
// screen-reader and keyboard users learn the result without hunting for it.
document.addEventListener("htmx:afterSwap", (event) => {
  const status = event.detail.target.querySelector?.('[role="status"], [role="alert"], [aria-invalid="true"]');
  if (status && status.matches('[aria-invalid="true"]')) status.focus();
});
