// Progressive enhancement only: every page works without this file.
"use strict";
document.addEventListener("click", function (ev) {
  var copy = ev.target.closest("[data-copy]");
  if (copy) {
    var source = document.getElementById(copy.getAttribute("data-copy"));
    if (!source) return;
    var text = source.value !== undefined ? source.value : source.textContent;
    var done = function () { copy.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { source.select(); });
    } else if (source.select) {
      source.select();
      document.execCommand("copy");
      done();
    }
    return;
  }
  var confirmer = ev.target.closest("[data-confirm]");
  if (confirmer && !window.confirm(confirmer.getAttribute("data-confirm"))) {
    ev.preventDefault();
  }
});
document.addEventListener("change", function (ev) {
  if (ev.target.matches("input[data-select-all]")) {
    document.querySelectorAll("input[name=issue]").forEach(function (box) {
      box.checked = ev.target.checked;
    });
  }
});
