// Enhancements only: every page works without this script.
"use strict";

function setUpMxList(list) {
  const addButton = list.querySelector("[data-add-row]");
  const renumber = () => {
    list.querySelectorAll("[data-mx-row] input").forEach((input, index) => {
      input.name = input.id = "mx-" + index;
    });
  };
  const wire = (row) => {
    const remove = row.querySelector("[data-remove-row]");
    remove.hidden = false;
    remove.addEventListener("click", () => {
      const rows = Array.from(list.querySelectorAll("[data-mx-row]"));
      if (rows.length > 1) {
        // Focus stays in the list: on the row that takes this one's place, else the one before.
        const index = rows.indexOf(row);
        const next = rows[index + 1] || rows[index - 1];
        row.remove();
        renumber();
        next.querySelector("input").focus();
      } else {
        const input = row.querySelector("input");
        input.value = "";
        input.focus();
      }
    });
  };
  list.querySelectorAll("[data-mx-row]").forEach(wire);
  addButton.hidden = false;
  addButton.addEventListener("click", () => {
    const rows = list.querySelectorAll("[data-mx-row]");
    const row = rows[rows.length - 1].cloneNode(true);
    row.classList.remove("invalid");
    row.querySelectorAll(".error").forEach((error) => error.remove());
    const input = row.querySelector("input");
    input.value = "";
    input.setAttribute("aria-invalid", "false");
    addButton.before(row);
    wire(row);
    renumber();
    input.focus();
  });
}

function setUpCopy(button) {
  if (!navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    await navigator.clipboard.writeText(button.dataset.copy);
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
}

// After a refused POST the page names its own address: a refresh then reloads the page
// rather than sending the form again.
function replaceAddress() {
  const url = document.body.dataset.replaceUrl;
  if (url && window.history.replaceState) window.history.replaceState(null, "", url);
}

// The summary of a refused form takes the focus; each of its links puts the focus in its field.
function setUpErrorSummary(summary) {
  summary.focus();
  summary.querySelectorAll("a[href^='#']").forEach((link) => {
    link.addEventListener("click", (event) => {
      const field = document.getElementById(link.getAttribute("href").slice(1));
      if (!field) return;
      event.preventDefault();
      field.scrollIntoView({ block: "center" });
      field.focus();
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  replaceAddress();
  document.querySelectorAll("[data-error-summary]").forEach(setUpErrorSummary);
  document.querySelectorAll("[data-mx-list]").forEach(setUpMxList);
  document.querySelectorAll("[data-copy]").forEach(setUpCopy);
});
