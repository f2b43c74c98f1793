/* The door page without reloading, and through a short loss of the venue's network (an enhancement: without
   this file the form is a plain POST and works the same).

   - A scan or typed code is sent with fetch as the same form POST (code, nonce, CSRF field); the answer is the
     door page, whose result, nonce and counts replace the ones shown. The field is emptied and keeps focus for
     the next scan.
   - When the request fails (no network, or the server answers 502/503/504), the scan is kept in localStorage
     with its nonce and sent again when the browser is back online (and every few seconds while any wait):
     the service counts each nonce once, so a scan that did arrive before the network went is not counted
     twice. "n Scans warten auf Verbindung" shows how many wait; the results of sent ones are listed.
   - The counts are asked for every 15 seconds (GET …/zahlen, JSON).
*/
(function () {
  "use strict";
  var door = document.querySelector("[data-door]");
  var form = document.getElementById("door-form");
  if (!door || !form || !window.fetch || !window.DOMParser || !window.URLSearchParams) {
    return;
  }
  var field = document.getElementById("code");
  var note = document.getElementById("door-queue");
  var KEY = "civic-door-queue:" + door.getAttribute("data-door");
  var flushing = false;

  function nonce() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    var s = "";
    for (var i = 0; i < bytes.length; i++) {
      s += ("0" + bytes[i].toString(16)).slice(-2);
    }
    return s;
  }

  function load() {
    try {
      var q = JSON.parse(window.localStorage.getItem(KEY) || "[]");
      return Array.isArray(q) ? q : [];
    } catch (e) {
      return [];
    }
  }

  function save(q) {
    try {
      window.localStorage.setItem(KEY, JSON.stringify(q));
    } catch (e) {
      /* private mode or full: the scans stay only in this page */
    }
  }

  var memory = null; /* this page's copy, in case localStorage refuses */
  function queue() {
    return memory !== null ? memory : load();
  }
  function store(q) {
    memory = q;
    save(q);
  }

  function showQueue() {
    var n = queue().length;
    note.hidden = n === 0;
    note.textContent = n ? note.getAttribute("data-text").replace("{n}", String(n)) : "";
  }

  function csrf() {
    var input = form.querySelector('input[name="csrf"]');
    return input ? input.value : "";
  }

  function send(entry) {
    var body = new URLSearchParams();
    body.set("csrf", entry.csrf);
    body.set("nonce", entry.nonce);
    body.set("code", entry.code);
    return window.fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "text/html" },
    });
  }

  function transient(response) {
    return response.status === 502 || response.status === 503 || response.status === 504;
  }

  /* The door page in ``html``, or null (a sign-in page, an error page). */
  function parse(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    return doc.querySelector("[data-door]") ? doc : null;
  }

  function replace(doc, id) {
    var fresh = doc.getElementById(id);
    var old = document.getElementById(id);
    if (fresh && old) {
      old.innerHTML = fresh.innerHTML;
    }
  }

  function show(doc) {
    replace(doc, "door-result");
    replace(doc, "door-figures");
    var fresh = doc.querySelector('#door-form input[name="nonce"]');
    if (fresh) {
      form.querySelector('input[name="nonce"]').value = fresh.value;
    }
  }

  function logResult(doc) {
    var result = doc.querySelector("#door-result .civic-door-result");
    if (!result) {
      return;
    }
    var list = document.getElementById("door-log");
    if (!list) {
      list = document.createElement("ul");
      list.id = "door-log";
      list.className = "civic-door-log";
      note.parentNode.insertBefore(list, note.nextSibling);
    }
    var item = document.createElement("li");
    item.appendChild(result.cloneNode(true));
    list.insertBefore(item, list.firstChild);
    while (list.children.length > 5) {
      list.removeChild(list.lastChild);
    }
  }

  function enqueue(entry) {
    var q = queue();
    q.push(entry);
    store(q);
    showQueue();
    var slot = document.getElementById("door-result");
    slot.innerHTML = "";
    var p = document.createElement("p");
    p.className = "civic-door-result civic-door-result--warn";
    p.setAttribute("data-outcome", "queued");
    p.textContent = note.getAttribute("data-queued");
    slot.appendChild(p);
  }

  function flush() {
    if (flushing) {
      return;
    }
    var q = queue();
    if (!q.length) {
      return;
    }
    flushing = true;
    var entry = q[0];
    send(entry)
      .then(function (response) {
        if (transient(response)) {
          throw new Error("still away");
        }
        return response.text().then(function (html) {
          var doc = parse(html);
          if (!doc) {
            /* not the door page (signed out meanwhile): the scans wait until the door page answers again */
            flushing = false;
            return;
          }
          store(
            queue().filter(function (e) {
              return e.nonce !== entry.nonce;
            })
          );
          showQueue();
          logResult(doc);
          replace(doc, "door-figures");
          flushing = false;
          flush();
        });
      })
      .catch(function () {
        flushing = false;
      });
  }

  form.addEventListener("submit", function (event) {
    var code = field.value.trim();
    if (!code) {
      return; /* the server shows its error page for an empty field */
    }
    event.preventDefault();
    var entry = { code: code, nonce: form.querySelector('input[name="nonce"]').value, csrf: csrf() };
    /* the next scan gets a nonce of its own at once, even before this one's answer is back */
    form.querySelector('input[name="nonce"]').value = nonce();
    field.value = "";
    field.focus();
    send(entry)
      .then(function (response) {
        if (transient(response)) {
          enqueue(entry);
          return;
        }
        return response.text().then(function (html) {
          var doc = parse(html);
          if (!doc) {
            /* signed out, or an old form: send it the plain way, so the browser shows that page (the same
               nonce again: counted once) */
            field.value = entry.code;
            form.querySelector('input[name="nonce"]').value = entry.nonce;
            form.submit();
            return;
          }
          show(doc);
          flush();
        });
      })
      .catch(function () {
        enqueue(entry);
      });
  });

  function refreshFigures() {
    var section = document.getElementById("door-figures");
    window
      .fetch(section.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        var type = response.headers.get("content-type") || "";
        if (!response.ok || type.indexOf("application/json") !== 0) {
          return null;
        }
        return response.json();
      })
      .then(function (data) {
        if (!data) {
          return;
        }
        var format = new Intl.NumberFormat(document.documentElement.lang || "de");
        section.querySelectorAll("[data-figure]").forEach(function (el) {
          var name = el.getAttribute("data-figure");
          if (name === "as_of") {
            el.textContent = el.getAttribute("data-text").replace("{time}", data.as_of);
          } else if (typeof data[name] === "number") {
            el.textContent = format.format(data[name]);
          }
        });
      })
      .catch(function () {
        /* offline: the counts stay as they were */
      });
  }

  window.addEventListener("online", flush);
  window.setInterval(function () {
    flush();
    refreshFigures();
  }, 15000);
  window.setInterval(flush, 5000);
  showQueue();
  flush();
})();
