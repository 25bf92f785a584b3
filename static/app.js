// neuron-atlas: keyboard navigation, copy-link, and small form conveniences. Pages work without it.
(function () {
  "use strict";

  function isTyping(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  // ← and → follow the page's previous/next links (neuron pages); "/" focuses the first search box.
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey || isTyping(event.target)) {
      return;
    }
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      var link = document.querySelector(event.key === "ArrowLeft" ? "a[rel=prev]" : "a[rel=next]");
      if (link) {
        event.preventDefault();
        window.location.assign(link.href);
      }
    } else if (event.key === "/") {
      var box = document.querySelector("main input[type=search]");
      if (box) {
        event.preventDefault();
        box.focus();
      }
    }
  });

  // Copy-link buttons: copy the absolute permalink, say so on the button for a moment.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-link]");
    if (!button) {
      return;
    }
    var url = new URL(button.getAttribute("data-copy-link"), window.location.href).href;
    var original = button.textContent;
    function done(text) {
      button.textContent = text;
      setTimeout(function () { button.textContent = original; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(url).then(function () { done("Copied"); }, function () { window.prompt("Copy this link", url); });
    } else {
      window.prompt("Copy this link", url);
    }
  });

  document.addEventListener("change", function (event) {
    var select = event.target;
    // Selects marked data-autosubmit (the layer switcher) navigate as soon as they change.
    if (select.matches("select[data-autosubmit]")) {
      select.form.submit();
    }
    // The upload form's architecture select reloads its layer list from the API.
    if (select.matches("select[data-layers-for]") && window.htmx) {
      var url = "/api/v1/architectures/" + encodeURIComponent(select.value) + "/layers";
      window.htmx.ajax("GET", url, { target: select.getAttribute("data-layers-for"), swap: "innerHTML" });
    }
  });
})();
