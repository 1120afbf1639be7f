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
      if (list.querySelectorAll("[data-mx-row]").length > 1) {
        row.remove();
        renumber();
      } else {
        row.querySelector("input").value = "";
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

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-mx-list]").forEach(setUpMxList);
  document.querySelectorAll("[data-copy]").forEach(setUpCopy);
});
