/* Camera scanning on the door page (an enhancement: the "Kamera" button appears only where a camera can be
   asked for). It uses the browser's BarcodeDetector where it reads QR codes, and otherwise the ZXing
   WebAssembly polyfill served by civic (/static/vendor/barcode-detector/, loaded only when needed). A code
   found fills the code field and sends the same form as a scanner's Enter would; the camera then stops. */
(function () {
  "use strict";
  var button = document.getElementById("door-camera");
  var form = document.getElementById("door-form");
  if (!button || !form || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return;
  }
  var VENDOR = "/static/vendor/barcode-detector/";
  var view = document.getElementById("door-camera-view");
  var video = document.getElementById("door-video");
  var hint = document.getElementById("door-camera-hint");
  var field = document.getElementById("code");
  var label = button.querySelector(".kern-label");
  var stream = null;
  var detector = null;
  var timer = null;
  var hintText = hint.textContent;

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = reject;
      document.head.appendChild(script);
    });
  }

  function native() {
    if (!("BarcodeDetector" in window)) {
      return Promise.resolve(null);
    }
    return window.BarcodeDetector.getSupportedFormats()
      .then(function (formats) {
        return formats.indexOf("qr_code") >= 0 ? new window.BarcodeDetector({ formats: ["qr_code"] }) : null;
      })
      .catch(function () {
        return null;
      });
  }

  function polyfill() {
    return loadScript(VENDOR + "ponyfill.js").then(function () {
      var api = window.BarcodeDetectionAPI;
      api.prepareZXingModule({
        overrides: {
          locateFile: function (path, prefix) {
            return path.slice(-5) === ".wasm" ? VENDOR + path : prefix + path;
          },
        },
      });
      return new api.BarcodeDetector({ formats: ["qr_code"] });
    });
  }

  function getDetector() {
    if (detector) {
      return Promise.resolve(detector);
    }
    return native()
      .then(function (found) {
        /* which reader runs, for the tests and for support questions */
        button.setAttribute("data-detector", found ? "native" : "zxing");
        return found || polyfill();
      })
      .then(function (found) {
        detector = found;
        return found;
      });
  }

  function setOn(on) {
    view.hidden = !on;
    button.setAttribute("aria-expanded", on ? "true" : "false");
    label.textContent = button.getAttribute(on ? "data-off" : "data-on");
  }

  function stop() {
    if (timer) {
      window.clearTimeout(timer);
      timer = null;
    }
    if (stream) {
      stream.getTracks().forEach(function (t) {
        t.stop();
      });
      stream = null;
    }
    video.srcObject = null;
    setOn(false);
  }

  function found(code) {
    stop();
    field.value = code;
    if (form.requestSubmit) {
      form.requestSubmit();
    } else {
      form.submit();
    }
    field.focus();
  }

  function scan() {
    timer = null;
    if (!stream) {
      return;
    }
    var next = function () {
      if (stream) {
        timer = window.setTimeout(scan, 200);
      }
    };
    if (video.readyState < 2) {
      next();
      return;
    }
    detector
      .detect(video)
      .then(function (codes) {
        var code = codes && codes.length ? String(codes[0].rawValue || "").trim() : "";
        if (code && stream) {
          found(code);
        } else {
          next();
        }
      })
      .catch(next);
  }

  function failed() {
    stop();
    view.hidden = false;
    hint.textContent = hint.getAttribute("data-failed");
  }

  function start() {
    hint.textContent = hintText;
    getDetector()
      .then(function () {
        return navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false });
      })
      .then(function (got) {
        stream = got;
        video.srcObject = stream;
        setOn(true);
        return video.play();
      })
      .then(scan)
      .catch(failed);
  }

  button.hidden = false;
  button.addEventListener("click", function () {
    if (stream) {
      stop();
      field.focus();
    } else {
      start();
    }
  });
})();
