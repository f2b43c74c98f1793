// The question form of the console's survey pages, as an enhancement: only the fields that belong to the chosen
// kind of answer are shown. Without script every field is shown with a hint saying which kinds it is for, and the
// server reads only the fields of the chosen kind either way.
(function () {
  "use strict";
  var FOR = {
    options: ["single_choice", "multiple_choice", "ranking"],
    max_selections: ["multiple_choice"],
    max_length: ["free_text"],
    min: ["scale", "matrix", "number"],
    max: ["scale", "matrix", "number"],
    integer: ["number"],
    rows: ["matrix"]
  };
  function field(id) {
    var input = document.getElementById(id);
    return input ? input.closest(".kern-form-input, .kern-form-check") : null;
  }
  function update(form) {
    var chosen = form.querySelector('input[name="kind"]:checked');
    var kind = chosen ? chosen.value : "";
    Object.keys(FOR).forEach(function (id) {
      var box = field(id);
      if (box) {
        box.hidden = FOR[id].indexOf(kind) < 0;
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var radio = document.querySelector('form input[name="kind"]');
    if (!radio) {
      return;
    }
    var form = radio.form;
    form.addEventListener("change", function (event) {
      if (event.target.name === "kind") {
        update(form);
      }
    });
    update(form);
  });
})();
