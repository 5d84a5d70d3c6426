// Progressive enhancement only: every page works without this file.
// "Select all" for lists of checkboxes (the supervisor's approval queue).
document.addEventListener("DOMContentLoaded", () => {
  // The outcome of what was just sent (the approval queue): read first by a screen reader.
  const outcome = document.querySelector("[data-focus-on-load]");
  if (outcome) outcome.focus();
  for (const toggle of document.querySelectorAll("input[data-select-all]")) {
    const shown = toggle.closest("[hidden]");  // offered only where this script runs
    if (shown) shown.removeAttribute("hidden");
    toggle.addEventListener("change", () => {
      const form = toggle.closest("form");
      for (const box of form.querySelectorAll("input[type=checkbox][name='" + toggle.dataset.selectAll + "']")) {
        box.checked = toggle.checked;
      }
    });
  }
});
