// openpairs search page: no framework, no external asset. State (query, options) lives in the URL.
"use strict";

const $ = (id) => document.getElementById(id);
const PLACEHOLDER = "data:image/svg+xml," + encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="180"><rect width="100%" height="100%" fill="#e5e5ea"/>' +
  '<text x="50%" y="50%" fill="#86868b" font-family="sans-serif" font-size="14" text-anchor="middle">image unavailable</text></svg>');
let info = null;
let lastUpload = null;

function options() {
  return { safe: $("safe").checked, dedup: $("dedup").checked, modality: $("modality").value, k: Number($("k").value) };
}

function stateToUrl(query) {
  const params = new URLSearchParams();
  if (query.text) params.set("q", query.text);
  if (query.id !== undefined) { params.set("id", query.id); params.set("by", query.id_modality); }
  const o = options();
  if (!o.safe) params.set("safe", "0");
  if (!o.dedup) params.set("dedup", "0");
  if (o.modality !== "image") params.set("modality", o.modality);
  if (o.k !== 40) params.set("k", o.k);
  const url = params.toString() ? "?" + params : location.pathname;
  if (url !== location.search) history.pushState(null, "", url);
}

function urlToState() {
  const params = new URLSearchParams(location.search);
  $("safe").checked = params.get("safe") !== "0";
  $("dedup").checked = params.get("dedup") !== "0";
  $("modality").value = params.get("modality") === "text" ? "text" : "image";
  if (params.get("k")) $("k").value = params.get("k");
  $("q").value = params.get("q") || "";
  if (params.get("q")) return { text: params.get("q") };
  if (params.get("id") !== null) return { id: Number(params.get("id")), id_modality: params.get("by") === "text" ? "text" : "image" };
  return null;
}

function showError(message) {
  $("error").hidden = !message;
  $("error").textContent = message || "";
}

async function send(body, isForm) {
  const started = performance.now();
  $("status").textContent = "searching…";
  showError("");
  const init = isForm ? { method: "POST", body } : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  try {
    const response = await fetch("/api/search", init);
    const payload = await response.json();
    if (!response.ok) throw new Error(payload.detail || response.statusText);
    render(payload.results);
    $("status").textContent = `${payload.results.length} results in ${Math.round(performance.now() - started)} ms`;
  } catch (err) {
    $("status").textContent = "";
    showError(String(err.message || err));
  }
}

function search(query, push = true) {
  lastUpload = null;
  if (push) stateToUrl(query);
  return send({ ...query, ...options() }, false);
}

function searchUpload(file) {
  lastUpload = file;
  history.pushState(null, "", location.pathname);
  const form = new FormData();
  form.append("image", file);
  for (const [name, value] of Object.entries(options())) form.append(name, String(value));
  return send(form, true);
}

function render(results) {
  const grid = $("results");
  grid.replaceChildren();
  for (const r of results) {
    const card = document.createElement("figure");
    card.className = "result";
    card.dataset.id = r.id;
    const img = document.createElement("img");
    img.loading = "lazy";
    img.referrerPolicy = "no-referrer";
    img.alt = r.caption || "";
    img.title = "search by this image";
    img.onerror = () => { img.onerror = null; img.src = PLACEHOLDER; img.classList.add("broken"); };
    img.src = r.url || PLACEHOLDER;
    img.addEventListener("click", () => search({ id: r.id, id_modality: "image" }));
    const text = document.createElement("figcaption");
    const caption = document.createElement("span");
    caption.className = "caption";
    caption.textContent = r.caption || "(no caption)";
    caption.title = "search by this caption";
    caption.addEventListener("click", () => searchCaption(r));
    const meta = document.createElement("span");
    meta.className = "meta";
    const extra = r.aesthetic != null ? ` · aesthetic ${r.aesthetic.toFixed(1)}` : "";
    meta.textContent = `similarity ${r.similarity.toFixed(3)}${extra}`;
    text.append(caption, meta);
    card.append(img, text);
    grid.append(card);
  }
}

function searchCaption(r) {
  if (info && info.text_queries && r.caption) {
    $("q").value = r.caption;
    return search({ text: r.caption });
  }
  return search({ id: r.id, id_modality: info && info.modalities.includes("text") ? "text" : "image" });
}

function rerun() {
  if (lastUpload) return searchUpload(lastUpload);
  const query = urlToStateQuery();
  if (query) return search(query);
}

function urlToStateQuery() {
  const params = new URLSearchParams(location.search);
  if ($("q").value.trim()) return { text: $("q").value.trim() };
  if (params.get("id") !== null) return { id: Number(params.get("id")), id_modality: params.get("by") === "text" ? "text" : "image" };
  return null;
}

function wireDrop() {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) searchUpload(file);
  });
  $("file").addEventListener("change", () => { if ($("file").files[0]) searchUpload($("file").files[0]); });
}

async function start() {
  wireDrop();
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("q").value.trim();
    if (text) search({ text });
  });
  for (const id of ["safe", "dedup", "modality", "k"]) $(id).addEventListener("change", rerun);
  window.addEventListener("popstate", () => { const q = urlToState(); if (q) search(q, false); });
  try {
    info = await (await fetch("/api/info")).json();
    $("info").textContent = `${info.name}: ${info.count.toLocaleString()} items`;
    if (!info.text_queries) $("q").placeholder = "Text search unavailable: " + (info.clip_error || "no CLIP model");
    if (!info.modalities.includes("text")) $("modality").querySelector('option[value="text"]').disabled = true;
  } catch (err) {
    showError("cannot reach the search service");
  }
  const query = urlToState();
  if (query) search(query, false);
}

start();
