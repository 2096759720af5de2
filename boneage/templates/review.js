// Label review: Update / Delete / Problematic per film, kept in local storage,
// downloaded as the corrections file that ingestion reads (boneage/corrections.py).
// No server and no network: it works from a report opened as a file.
(function () {
  var form = document.getElementById("review-controls");
  if (!form) return;
  var COLUMNS = form.dataset.columns.split(",");
  var MAX_MONTHS = 240;
  var reviewer = document.getElementById("reviewer");
  var date = document.getElementById("review-date");
  var status = document.getElementById("review-status");
  var store = null;
  try { store = window.localStorage; store.getItem("x"); } catch (e) { store = null; }
  var prefix = "boneage-review:" + location.pathname + ":";

  function say(text) { status.textContent = text; }
  function load(key, fallback) {
    if (!store) return fallback;
    try { var v = store.getItem(prefix + key); return v === null ? fallback : JSON.parse(v); } catch (e) { return fallback; }
  }
  function save(key, value) { if (store) store.setItem(prefix + key, JSON.stringify(value)); }
  function today() {
    var d = new Date(), p = function (n) { return (n < 10 ? "0" : "") + n; };
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate());
  }
  function cell(v) {
    v = v === undefined || v === null ? "" : String(v);
    return /[",\r\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
  }
  function rowOf(d) { return COLUMNS.map(function (c) { return d[c]; }); }

  reviewer.value = load("reviewer", "");
  date.value = load("date", "") || today();
  reviewer.addEventListener("change", function () { save("reviewer", reviewer.value.trim()); });
  date.addEventListener("change", function () { save("date", date.value); });
  if (!store) say("This browser keeps no local storage for files: download your decisions before closing the page.");

  document.querySelectorAll("section.review-cohort").forEach(function (section) {
    var cohort = section.dataset.cohort;
    var earlier = JSON.parse(section.querySelector("script.earlier").textContent);
    var done = new Map(); // id -> decision, in the order decisions were made (later rows win)
    var counter = section.querySelector(".decided");
    var same = function (a, b) { return COLUMNS.slice(0, 3).every(function (c, i) { return String(a[c]) === String(b[i]); }); };
    // Decisions already in the cohort's corrections file (applied by a rerun) are not kept twice.
    load("decisions:" + cohort, []).forEach(function (d) {
      if (!earlier.some(function (row) { return same(d, row); })) done.set(d.id, d);
    });

    function persist() {
      var list = Array.from(done.values());
      save("decisions:" + cohort, list);
      counter.textContent = list.length + (list.length === 1 ? " decision" : " decisions");
    }
    function show(tr) {
      var d = done.get(tr.dataset.id), span = tr.querySelector(".decision");
      tr.classList.remove("did-update", "did-delete", "did-problematic");
      tr.querySelector(".undo").hidden = !d;
      if (!d) { span.textContent = ""; return; }
      tr.classList.add("did-" + d.action);
      span.textContent = d.action + (d.action === "update" ? " to " + d.boneage_months + " mo" : "") + " (" + d.reviewer + ", " + d.date + ")";
      if (d.action === "update") { tr.querySelector("input.age").value = d.boneage_months; tr.querySelector("select.unit").value = "months"; }
      if (d.note !== tr.dataset.note) tr.querySelector("input.note").value = d.note;
    }
    function decide(tr, action) {
      var id = tr.dataset.id;
      if (!action) { done.delete(id); persist(); show(tr); say(""); return; }
      var who = reviewer.value.trim();
      if (!who) { say("Enter the reviewer's name first."); reviewer.focus(); return; }
      if (!date.value) { say("Enter the review date first."); date.focus(); return; }
      var months = "";
      if (action === "update") {
        var input = tr.querySelector("input.age"), v = parseFloat(input.value);
        if (tr.querySelector("select.unit").value === "years") v = v * 12;
        if (!(v >= 0 && v <= MAX_MONTHS)) { say("Bone age for " + id + " must be 0-" + MAX_MONTHS + " months (0-" + MAX_MONTHS / 12 + " years)."); input.focus(); return; }
        months = String(Math.round(v * 10) / 10);
      }
      done.delete(id); // a changed decision moves to the end, as in the file
      done.set(id, { id: id, action: action, boneage_months: months, reviewer: who, date: date.value,
                   note: tr.querySelector("input.note").value.trim() || tr.dataset.note });
      save("reviewer", who);
      persist(); show(tr); say("");
    }
    section.querySelector("tbody").addEventListener("click", function (ev) {
      var button = ev.target.closest("button[data-action]");
      if (button) decide(button.closest("tr"), button.dataset.action);
    });
    section.querySelector("button.clear").addEventListener("click", function () {
      done.clear(); persist(); section.querySelectorAll("tbody tr").forEach(show); say("");
    });
    section.querySelector("button.download").addEventListener("click", function () {
      var rows = earlier.concat(Array.from(done.values()).map(rowOf));
      var text = [COLUMNS].concat(rows).map(function (r) { return r.map(cell).join(","); }).join("\n") + "\n";
      var a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
      a.download = this.dataset.file;
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
      say("Saved " + a.download + ": " + done.size + " new decision(s) and " + earlier.length + " earlier correction(s).");
    });
    section.querySelectorAll("tbody tr").forEach(show);
    persist();
  });

  // Filters: by cohort (whole sections) and by subset (rows).
  var cohortFilter = document.getElementById("review-cohort"), subsetFilter = document.getElementById("review-subset");
  function filter() {
    document.querySelectorAll("section.review-cohort").forEach(function (section) {
      section.hidden = !!cohortFilter.value && section.dataset.cohort !== cohortFilter.value;
      section.querySelectorAll("tbody tr").forEach(function (tr) {
        tr.hidden = !!subsetFilter.value && tr.dataset.subset !== subsetFilter.value;
      });
    });
  }
  cohortFilter.addEventListener("change", filter);
  subsetFilter.addEventListener("change", filter);
})();
