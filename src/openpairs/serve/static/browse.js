// The dataset browser view (#browse): pages of the build's kept and dropped samples from /api/browse.
// Filters live in the URL hash (#browse?status=ok&...); paging keeps a stack of server cursors.
"use strict";

(() => {
  const SCORES = ["similarity", "punsafe", "aesthetic"];
  const FIELDS = ["status", "language", ...SCORES.flatMap((s) => [`min_${s}`, `max_${s}`]), "limit"];
  const input = (name) => $("b-" + name.replaceAll("_", "-"));
  const state = { params: null, cursors: [null], page: 0, next: null, total: null, ticket: 0 };
  let facetsLoaded = null;

  function placeholder(text) {
    return "data:image/svg+xml," + encodeURIComponent(
      '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="180"><rect width="100%" height="100%" fill="#e5e5ea"/>' +
      '<text x="50%" y="50%" fill="#86868b" font-family="sans-serif" font-size="13" text-anchor="middle">' +
      text.replace(/[<&>"]/g, "") + "</text></svg>");
  }

  function option(select, value, label) {
    const item = document.createElement("option");
    item.value = value;
    item.textContent = label;
    select.append(item);
  }

  async function loadFacets() {
    const response = await fetch("/api/browse/facets");
    const facets = await response.json();
    if (!response.ok) throw new Error(facets.detail || response.statusText);
    const dropped = facets.rows - (facets.statuses.ok || 0);
    option($("b-status"), "ok", `kept (${facets.statuses.ok || 0})`);
    option($("b-status"), "dropped", `dropped, any reason (${dropped})`);
    for (const [name, n] of Object.entries(facets.statuses)) if (name !== "ok") option($("b-status"), name, `${name} (${n})`);
    for (const [name, n] of Object.entries(facets.languages)) option($("b-language"), name, `${name} (${n})`);
  }

  function formParams() {
    const params = new URLSearchParams();
    for (const name of FIELDS) {
      const value = input(name).value.trim();
      if (value !== "" && !(name === "limit" && value === "48")) params.set(name, value);
    }
    return params;
  }

  function paramsToForm(params) {
    for (const name of FIELDS) input(name).value = params.get(name) || (name === "limit" ? "48" : "");
  }

  function number(value, digits) {
    return value == null ? "–" : value.toFixed(digits);
  }

  function card(row) {
    const card = document.createElement("figure");
    card.className = "sample";
    card.dataset.key = row.key;
    card.dataset.status = row.status;
    const img = document.createElement("img");
    img.alt = row.caption || "";
    if (row.image) {
      img.src = row.image;
      img.onerror = () => { img.onerror = null; img.src = placeholder("image unreadable"); img.className = "placeholder"; };
    } else {
      img.src = placeholder(row.status === "ok" ? "no stored image" : `dropped: ${row.status}`);
      img.className = "placeholder";
    }
    const text = document.createElement("figcaption");
    const lines = [
      ["caption", row.caption || "(no caption)"],
      ["meta size", `${row.width != null ? `${row.width}×${row.height}` : "no image"} · ${row.language || "no language"}`],
      ["meta scores", `similarity ${number(row.similarity, 3)} · punsafe ${number(row.punsafe, 2)} · aesthetic ${number(row.aesthetic, 1)}`],
      ["meta license", `licence ${row.license || "–"}`],
    ];
    for (const [name, value] of lines) {
      const span = document.createElement("span");
      span.className = name;
      span.textContent = value;
      text.append(span);
    }
    const badge = document.createElement("span");
    badge.className = "badge " + (row.status === "ok" ? "kept" : "dropped");
    badge.textContent = row.status === "ok" ? "kept" : `dropped at ${row.dropped_at}: ${row.status}${row.reason ? ` (${row.reason})` : ""}`;
    text.append(badge);
    card.append(img, text);
    return card;
  }

  async function show() {
    const params = new URLSearchParams(state.params);
    const cursor = state.cursors[state.page];
    if (cursor) params.set("cursor", cursor);
    if (state.total === null) params.set("count", "true");
    const ticket = ++state.ticket;  // a slower earlier answer must not replace a later one
    $("b-line").textContent = "loading…";
    $("b-error").hidden = true;
    try {
      const response = await fetch("/api/browse?" + params);
      const payload = await response.json();
      if (ticket !== state.ticket) return;
      if (!response.ok) throw new Error(payload.detail || response.statusText);
      if (payload.total != null) state.total = payload.total;
      state.next = payload.next;
      $("browse-grid").replaceChildren(...payload.rows.map(card));
      const first = state.page * payload.limit;
      $("b-line").textContent = payload.rows.length
        ? `samples ${first + 1}–${first + payload.rows.length} of ${state.total}` : "no sample matches these filters";
      $("b-page").textContent = `page ${state.page + 1}`;
      const skipped = Object.entries(payload.skipped || {});
      if (skipped.length) {
        $("b-error").textContent = `${skipped.length} shard(s) could not be read; their rows are missing: ` +
          skipped.map(([shard, why]) => `${shard} (${why})`).join("; ");
        $("b-error").hidden = false;
      }
    } catch (err) {
      if (ticket !== state.ticket) return;
      $("b-line").textContent = "";
      $("b-error").textContent = String(err.message || err);
      $("b-error").hidden = false;
      state.next = null;
    }
    $("b-prev").disabled = state.page === 0;
    $("b-next").disabled = !state.next;
  }

  function apply(params) {
    Object.assign(state, { params, cursors: [null], page: 0, next: null, total: null });
    const hash = "#browse" + (params.toString() ? "?" + params : "");
    if (location.hash !== hash) history.replaceState(null, "", location.pathname + location.search + hash);
    return show();
  }

  async function openView() {
    const browsing = location.hash.startsWith("#browse");
    $("browse-view").hidden = !browsing;
    $("search-view").hidden = browsing;
    $("tab-browse").classList.toggle("active", browsing);
    $("tab-search").classList.toggle("active", !browsing);
    if (!browsing) return;
    facetsLoaded = facetsLoaded || loadFacets().catch((err) => { $("b-error").textContent = String(err.message || err); $("b-error").hidden = false; });
    await facetsLoaded;
    const params = new URLSearchParams(location.hash.split("?")[1] || "");
    paramsToForm(params);
    if (state.params === null || state.params.toString() !== formParams().toString()) await apply(formParams());
  }

  $("browse-form").addEventListener("submit", (e) => { e.preventDefault(); apply(formParams()); });
  $("b-next").addEventListener("click", () => {
    if (!state.next) return;
    state.cursors[state.page + 1] = state.next;
    state.page += 1;
    show();
  });
  $("b-prev").addEventListener("click", () => {
    if (state.page === 0) return;
    state.page -= 1;
    show();
  });
  window.addEventListener("hashchange", openView);
  openView();
})();
