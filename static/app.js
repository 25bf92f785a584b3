// neuron-atlas: keyboard navigation, copy-link, and small form conveniences. Pages work without it.
(function () {
  "use strict";

  function isTyping(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  // ← and → go to the previous/next neuron on a neuron page (its links are marked data-arrow-key, and say so in
  // their titles); they never page a layer grid, whose pager is for the mouse. "/" focuses the first search box.
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey || isTyping(event.target)) {
      return;
    }
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      var link = document.querySelector(event.key === "ArrowLeft" ? "a[data-arrow-key=prev]" : "a[data-arrow-key=next]");
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

  // The address says what is on screen: a layer grid's concept box (`concept`) joins its filter and sort (which
  // htmx puts there), so a shared link or a reload shows the same thing.
  function syncConceptInUrl() {
    var box = document.getElementById("concept-q");
    if (!box || !window.history.replaceState) {
      return;
    }
    var url = new URL(window.location.href);
    var value = box.value.trim();
    if (value) {
      url.searchParams.set("concept", value);
    } else {
      url.searchParams.delete("concept");
    }
    if (url.href !== window.location.href) {
      window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
    }
  }

  function restoreConceptFromUrl() {
    var box = document.getElementById("concept-q");
    var concept = new URL(window.location.href).searchParams.get("concept");
    if (!box || !concept || !window.htmx) {
      return;
    }
    box.value = concept;
    window.htmx.trigger(box.form, "submit");
  }

  // The upload form's filter box shows only the other layers whose name holds what is typed.
  function filterLayers(box) {
    var list = document.querySelector(box.getAttribute("data-filters"));
    if (!list) {
      return;
    }
    var text = box.value.trim().toLowerCase();
    var shown = 0;
    list.querySelectorAll("[data-layer-name]").forEach(function (option) {
      var match = !text || option.getAttribute("data-layer-name").indexOf(text) >= 0;
      option.hidden = !match;
      shown += match ? 1 : 0;
    });
    var empty = box.parentElement.querySelector(".layer-filter-empty");
    if (empty) {
      empty.hidden = shown > 0;
    }
  }

  document.addEventListener("input", function (event) {
    if (event.target.matches("input[data-filters]")) {
      filterLayers(event.target);
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.matches("input[data-filters]")) {
      event.preventDefault(); // filtering, not submitting the upload
    }
  });
  // A card opened from a sorted or filtered grid carries that order on (?sort=&q=), so the neuron page's
  // previous/next follow it. Set on press, before the browser follows the link (middle clicks included).
  function carryGridOrder(event) {
    var card = event.target.closest("#grid a.card");
    var sort = document.getElementById("grid-sort");
    var filter = document.getElementById("grid-q");
    if (!card || !sort) {
      return;
    }
    var url = new URL(card.getAttribute("href"), window.location.href);
    url.search = "";
    if (sort.value && sort.value !== "unit") {
      url.searchParams.set("sort", sort.value);
    }
    if (filter && filter.value.trim()) {
      url.searchParams.set("q", filter.value.trim());
    }
    card.setAttribute("href", url.pathname + url.search);
  }
  document.addEventListener("mousedown", carryGridOrder);
  document.addEventListener("click", carryGridOrder);
  document.body.addEventListener("htmx:afterSettle", syncConceptInUrl);
  document.addEventListener("DOMContentLoaded", function () {
    restoreConceptFromUrl();
  });

  document.addEventListener("change", function (event) {
    var select = event.target;
    // Selects marked data-autosubmit (the layer switcher) navigate as soon as they change.
    if (select.matches("select[data-autosubmit]")) {
      select.form.submit();
    }
    // The upload form's architecture select reloads its layer list from the API (each option carries its URL).
    if (select.matches("select[data-layers-for]") && window.htmx) {
      var url = select.selectedOptions[0].getAttribute("data-layers-url");
      window.htmx.ajax("GET", url, { target: select.getAttribute("data-layers-for"), swap: "innerHTML" });
    }
    // Checkboxes marked data-remember (the heatmap toggle) keep their state for the next page.
    if (select.matches("input[type=checkbox][data-remember]")) {
      try {
        window.localStorage.setItem(select.getAttribute("data-remember"), select.checked ? "1" : "0");
      } catch (error) { /* storage off: the toggle still works on this page */ }
    }
  });

  // ... and get it back on every page that has them: top-image pages, previous/next neurons.
  function restoreRemembered(root) {
    root.querySelectorAll("input[type=checkbox][data-remember]").forEach(function (box) {
      var saved = null;
      try {
        saved = window.localStorage.getItem(box.getAttribute("data-remember"));
      } catch (error) { /* storage off */ }
      if (saved !== null) {
        box.checked = saved === "1";
      }
    });
  }
  restoreRemembered(document);
  document.addEventListener("htmx:afterSwap", function (event) { restoreRemembered(event.target); });
})();
