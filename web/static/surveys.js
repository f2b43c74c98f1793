// Progressive enhancement of a survey step: a question whose display condition depends on another question
// of the same page is hidden until that question is answered so. Without this script every question stays
// visible with a sentence saying when to answer it, and the server drops answers to questions not shown.
(function () {
  "use strict";
  function values(form, question) {
    var out = [];
    var inputs = form.querySelectorAll('[name="q-' + question + '"]');
    for (var i = 0; i < inputs.length; i++) {
      var el = inputs[i];
      if ((el.type === "radio" || el.type === "checkbox") && !el.checked) continue;
      if (el.value) out.push(el.value);
    }
    return out;
  }
  function update(form) {
    var conditional = form.querySelectorAll("[data-condition-question]");
    for (var i = 0; i < conditional.length; i++) {
      var box = conditional[i];
      var question = box.getAttribute("data-condition-question");
      if (!form.querySelector('[name="q-' + question + '"]')) continue; // on an earlier page: the server decided
      var wanted = box.getAttribute("data-condition-any").split(" ");
      var given = values(form, question);
      var shown = given.some(function (v) { return wanted.indexOf(v) !== -1; });
      box.hidden = !shown;
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector(".civic-survey-form");
    if (!form) return;
    // The sentences saying when to answer a question are for pages without script.
    var sentences = form.querySelectorAll(".civic-condition");
    for (var i = 0; i < sentences.length; i++) {
      var box = sentences[i].closest("[data-condition-question]");
      if (box && form.querySelector('[name="q-' + box.getAttribute("data-condition-question") + '"]')) {
        sentences[i].hidden = true;
      }
    }
    form.addEventListener("change", function () { update(form); });
    update(form);
  });
})();
