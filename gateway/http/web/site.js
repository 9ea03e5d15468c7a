// Progressive enhancement only: every page works without it. Shows the copy buttons next to
// fingerprints and copies the fingerprint's text (spaces included) to the clipboard.
"use strict";
document.querySelectorAll("button.copy").forEach(function (button) {
  if (!navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    var source = document.getElementById(button.dataset.copy);
    if (!source) return;
    navigator.clipboard.writeText(source.textContent).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    });
  });
});
