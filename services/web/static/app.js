// Progressive enhancement only: every page works without this file.
// "Select all" for lists of checkboxes (the supervisor's approval queue).
document.addEventListener("DOMContentLoaded", () => {
  for (const toggle of document.querySelectorAll("input[data-select-all]")) {
    toggle.addEventListener("change", () => {
      const form = toggle.closest("form");
      for (const box of form.querySelectorAll("input[type=checkbox][name='" + toggle.dataset.selectAll + "']")) {
        box.checked = toggle.checked;
      }
    });
  }
});
