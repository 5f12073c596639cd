// The engine's web console: plain JavaScript on the public API only (HTTP with X-API-Key,
// WebSockets with ?apiKey=). The key lives in sessionStorage, never in the page.

const KEY_STORAGE = "dex-console.apiKey";
const TERMINAL = new Set(["confirmed", "partially_filled", "failed", "cancelled", "expired"]);
const CANCELLABLE = new Set(["pending", "waiting"]);
const TONES = { confirmed: "ok", partially_filled: "warn", waiting: "warn", failed: "bad", expired: "bad", cancelled: "muted" };
const POOLS_EVERY_MS = 2000;
const ANSWER_TIMEOUT_MS = 10000;
const MAX_ROWS = 50;
const PAGE = 15;
const REASONS = {
  slippage: "The price moved against the order: no venue could give at least its minimum amount out (slippage).",
  no_route: "No venue could fill an order of this size (no route).",
  limit_price_not_met: "The price moved back after the limit fired, before the order could fill at its limit.",
};

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

const state = {
  key: sessionStorage.getItem(KEY_STORAGE) || "",
  tokens: new Map(),   // mint -> {symbol, decimals}, from GET /api/markets
  pairs: [],
  rows: new Map(),     // orderId -> timeline row
  socket: null,        // the ws /api/orders/execute socket carrying this page's submissions
  awaiting: null,      // the submission waiting for its answer: {resolve, reject, timer}
  recentCursor: null,
  poolsTimer: null,
  tokensAt: 0,         // when the tokens were last read for a mint not known
};

// --- small helpers ----------------------------------------------------------------------------

/** An element with attributes and children (strings become text nodes: nothing is parsed as HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function formatNumber(value) {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const options = abs >= 1 || abs === 0 ? { maximumFractionDigits: 4 } : { maximumSignificantDigits: 6 };
  return value.toLocaleString("en-US", options);
}

/** A large amount in a few digits ("10.02K", "1.52M"), for the pools' depths. */
function compact(value) {
  return Number(value).toLocaleString("en-US", { notation: "compact", maximumSignificantDigits: 4 });
}

function symbol(mint) {
  return state.tokens.get(mint)?.symbol ?? `${String(mint).slice(0, 6)}…`;
}

/** Base units of `mint` as a readable amount with its symbol ("1.5 SOL"). */
function amount(units, mint) {
  if (units === null || units === undefined) return "—";
  const token = state.tokens.get(mint);
  if (!token) return `${units} units of ${symbol(mint)}`;
  return `${formatNumber(Number(units) / 10 ** token.decimals)} ${token.symbol}`;
}

function percent(fraction) {
  const value = Number(fraction) * 100;
  if (value > 0 && value < 0.0001) return "< 0.0001 %";
  return `${value.toLocaleString("en-US", { maximumFractionDigits: 4 })} %`;
}

/** A price or other decimal string from the API, readable. */
function decimal(text) {
  return text === null || text === undefined ? "—" : formatNumber(Number(text));
}

/** A symbol as sent, or a mint shortened. */
function asset(text) {
  return String(text).length > 12 ? symbol(text) : text;
}

function shortId(id) {
  return `${id.slice(0, 8)}…${id.slice(-4)}`;
}

function shortSig(signature) {
  return signature ? `${signature.slice(0, 10)}…${signature.slice(-6)}` : "—";
}

function seconds(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function reasonText(error) {
  if (!error) return "";
  const [code, ...rest] = String(error).split(": ");
  const sentence = REASONS[code];
  if (sentence) return rest.length ? `${sentence} (${rest.join(": ")})` : sentence;
  return `The engine gave up: ${error}`;
}

// --- the API ------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(message, status, field) {
    super(message);
    this.status = status;
    this.field = field ?? null;
  }
}

async function api(method, path, body) {
  const headers = { "X-API-Key": state.key };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) {
    if (response.status === 401) keyRefused(data.error);
    throw new ApiError(data.error || `HTTP ${response.status}`, response.status, data.field);
  }
  return data;
}

function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const separator = path.includes("?") ? "&" : "?";
  return `${scheme}://${location.host}${path}${separator}apiKey=${encodeURIComponent(state.key)}`;
}

// --- the key --------------------------------------------------------------------------------------

function setConnection(text, kind = "") {
  const pill = $("#connection");
  pill.textContent = text;
  pill.className = `pill ${kind}`;
}

function keyRefused(message) {
  showErrors($("#key-form"), { error: message || "key refused", field: "X-API-Key" });
  setConnection("key refused", "bad");
  stopPolling();
}

function useKey(key) {
  state.key = key.trim();
  clearErrors($("#key-form"));
  closeSocket();
  if (!state.key) {
    sessionStorage.removeItem(KEY_STORAGE);
    setConnection("no key");
    stopPolling();
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, state.key);
  setConnection("key set", "ok");
  refreshPools().then(startPolling, () => {}).finally(loadRecent);  // the tokens first: amounts need decimals
}

// --- form errors ----------------------------------------------------------------------------------

function clearErrors(form) {
  for (const span of $$(".field-error", form)) span.textContent = "";
  for (const input of $$("[aria-invalid]", form)) input.removeAttribute("aria-invalid");
}

/** The error next to the field the server named (`field` is the API's camelCase name), else at the form's foot. */
function showErrors(form, { error, field, status }) {
  clearErrors(form);
  const span = (field && $(`.field-error[data-field="${CSS.escape(field)}"]`, form)) || $('.field-error[data-field=""]', form);
  span.textContent = status && !field ? `${error} (${status})` : error;
  const input = field && form.elements.namedItem(field);
  if (input instanceof Element) input.setAttribute("aria-invalid", "true");
}

// --- submitting orders over one socket ------------------------------------------------------------

function closeSocket() {
  if (state.socket) state.socket.close(1000);
  state.socket = null;
}

function executeSocket() {
  if (state.socket && state.socket.readyState <= WebSocket.OPEN) return state.socket.ready;
  const socket = new WebSocket(socketUrl("/api/orders/execute"));
  socket.ready = new Promise((resolve, reject) => {
    socket.addEventListener("open", () => { setConnection("live", "ok"); resolve(socket); }, { once: true });
    socket.addEventListener("error", () => reject(new ApiError("cannot open the order socket", 0)), { once: true });
  });
  socket.addEventListener("message", (message) => onExecuteMessage(JSON.parse(message.data)));
  socket.addEventListener("close", () => {
    if (state.socket === socket) {
      state.socket = null;
      if (state.key && $("#connection").textContent === "live") setConnection("key set", "ok");
    }
    if (state.awaiting) answer(null, new ApiError("the order socket closed before an answer", 0));
    for (const row of state.rows.values()) {  // what this socket was carrying continues on a stream of its own
      if (row.source === socket && !row.terminal) follow(row);
    }
  });
  state.socket = socket;
  return socket.ready;
}

function answer(orderId, error) {
  const awaiting = state.awaiting;
  if (!awaiting) return false;
  state.awaiting = null;
  clearTimeout(awaiting.timer);
  if (error) awaiting.reject(error);
  else awaiting.resolve(orderId);
  return true;
}

function onExecuteMessage(message) {
  if (message.type === "error") {
    if (message.status === 401) keyRefused(message.error);
    if (!answer(null, new ApiError(message.error, message.status, message.field))) {
      setConnection(`${message.error} (${message.status})`, "bad");
    }
    return;
  }
  const known = state.rows.has(message.orderId);
  const row = ensureRow(message.orderId);
  if (!known) {
    row.source = state.socket;
    answer(message.orderId, null);  // the one submission in flight: its first event names its order
    scheduleRecent();
  }
  receive(row, message);
}

/** Send one order; resolves with its id (first event) or rejects with the server's error. */
async function submit(order) {
  if (state.awaiting) throw new ApiError("the previous order is still waiting for its answer", 0);
  const socket = await executeSocket();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => answer(null, new ApiError("no answer from the server", 0)), ANSWER_TIMEOUT_MS);
    state.awaiting = { resolve, reject, timer };
    socket.send(JSON.stringify(order));
  });
}

function orderFromForm(form) {
  const kind = form.elements.type.value;
  const order = { type: kind };
  for (const input of $$("input, select", form)) {
    const label = input.closest("[data-kinds]");
    if (input.name === "type" || !input.name || (label && !label.dataset.kinds.split(" ").includes(kind))) continue;
    const value = input.value.trim();
    if (value === "") continue;
    const numeric = ["slippageBps", "maxPriceImpactBps", "expiresAt"].includes(input.name);
    order[input.name] = numeric && /^-?\d+$/.test(value) ? Number(value) : value;
  }
  return order;
}

function showKind(form) {
  const kind = form.elements.type.value;
  for (const label of $$("[data-kinds]", form)) label.hidden = !label.dataset.kinds.split(" ").includes(kind);
  if (kind === "sniper") form.elements.side.value = "buy";
  const side = form.elements.side.value;
  $("#amount-hint").textContent = side === "sell" ? "of the base asset (sold)" : "of the quote asset (spent)";
}

// --- the live timeline ------------------------------------------------------------------------------

function ensureRow(orderId) {
  let row = state.rows.get(orderId);
  if (row) return row;
  const status = h("span", { class: "status" }, "…");
  const cancel = h("button", { type: "button", class: "cancel small", hidden: true, onclick: () => cancelOrder(row) }, "cancel");
  const title = h("span", { class: "title" }, shortId(orderId));
  const elapsed = h("span", { class: "elapsed" });
  const note = h("p", { class: "note", role: "alert" });
  const steps = h("ol", { class: "steps" });
  const el = h("li", { class: "order", "data-order-id": orderId },
    h("div", { class: "order-head" }, title, status, elapsed, cancel), note, steps);
  row = { id: orderId, el, status, cancel, title, elapsed, note, steps, events: [], lastSeq: 0, t0: null, tPrev: null,
          terminal: false, source: null, stream: null };
  state.rows.set(orderId, row);
  $("#timeline").prepend(el);
  $("#timeline-card .empty").hidden = true;
  for (const old of [...state.rows.values()].slice(0, Math.max(0, state.rows.size - MAX_ROWS))) {
    old.stream?.close();
    old.el.remove();
    state.rows.delete(old.id);
  }
  return row;
}

/** Learn the tokens of `mints` not known yet (a pool launched since the pools were read): the rows naming
 *  them are drawn again once they are known. */
function learnTokens(mints) {
  if (mints.every((mint) => !mint || state.tokens.has(mint)) || Date.now() - state.tokensAt < 1000) return;
  state.tokensAt = Date.now();
  refreshPools().catch(() => {});
}

/** Draw a row's events again (amounts of a token learned since). */
function redraw(row) {
  const events = row.events;
  Object.assign(row, { events: [], lastSeq: 0, t0: null, tPrev: null });
  row.steps.replaceChildren();
  for (const event of events) show(row, event);
}

/** One event into its row, in seq order: an old one is ignored, a gap is fetched first. */
async function receive(row, event) {
  if (event.seq <= row.lastSeq) return;
  if (row.mints) learnTokens([row.mints.input, row.mints.output]);
  if (event.seq > row.lastSeq + 1) {
    const missing = await api("GET", `/api/orders/${row.id}/events?after=${row.lastSeq}`).catch(() => []);
    for (const stored of missing) if (stored.seq < event.seq) show(row, stored);
  }
  show(row, event);
}

function show(row, event) {
  if (event.seq <= row.lastSeq) return;
  row.lastSeq = event.seq;
  row.events.push(event);
  const ts = Date.parse(event.ts);
  if (event.status === "pending" || row.t0 === null) row.t0 = ts;
  if (event.status === "pending") row.title.textContent = `${orderTitle(event.data)} · ${shortId(row.id)}`;
  const sinceSubmit = ts - row.t0;
  const step = row.tPrev === null ? 0 : ts - row.tPrev;
  row.tPrev = ts;
  row.status.textContent = event.status.replace("_", " ");
  row.status.dataset.tone = TONES[event.status] ?? "";
  row.el.dataset.status = event.status;
  row.terminal = TERMINAL.has(event.status);
  row.cancel.hidden = !CANCELLABLE.has(event.status);
  row.elapsed.textContent = `${seconds(sinceSubmit)} since submit`;
  row.steps.append(h("li", { class: "step", "data-status": event.status, "data-seq": event.seq },
    h("span", { class: "step-status", "data-tone": TONES[event.status] }, event.status.replace("_", " ")),
    h("span", { class: "step-time", title: event.ts }, `+${seconds(sinceSubmit)}`,
      h("small", {}, ` (step ${seconds(step)})`)),
    h("div", { class: "step-detail" }, detail(event.status, event.data || {}, row))));
  updateRecentStatus(row.id, event.status, event.seq);
  if (row.terminal) scheduleRecent();
}

function orderTitle(data) {
  return `${data.type} ${data.side} ${amount(data.amountIn, data.inputMint)} · ${asset(data.baseAsset)}/${asset(data.quoteAsset)}`;
}

function detail(status, data, row) {
  switch (status) {
    case "pending": {
      row.mints = { input: data.inputMint, output: data.outputMint };
      const parts = [`${amount(data.amountIn, data.inputMint)} → ${symbol(data.outputMint)}`,
        `slippage ${data.slippageBps} bps`];
      if (data.limitPrice) parts.push(`limit ${data.limitPrice}`);
      if (data.minAmountOut) parts.push(`min out ${amount(data.minAmountOut, data.outputMint)}`);
      if (data.expiresAt) parts.push(`expires ${new Date(data.expiresAt).toLocaleTimeString()}`);
      for (const [name, value] of Object.entries(data.conditions || {})) {
        if (value !== null && value !== undefined) parts.push(`${name} ${value}`);
      }
      return parts.join(" · ");
    }
    case "waiting":
      if (data.refused) {
        const launch = data.launch || {};
        return `Launch refused: ${data.refused}` + (launch.venue ? ` (${launch.venue}: liquidity `
          + `${decimal(launch.liquidity)}, price ${decimal(launch.price)}, impact ${launch.priceImpactBps} bps)` : "")
          + "; still waiting.";
      }
      return `Resting until ${data.expiresAt ? new Date(data.expiresAt).toLocaleString() : "it fires"}.`;
    case "triggered":
      if (data.launch) return `Fired by a launch on ${data.launch.venue}: liquidity ${decimal(data.launch.liquidity)}, `
        + `price ${decimal(data.launch.price)}, impact ${data.launch.priceImpactBps} bps.`;
      return `Fired: ${data.venue} can fill at ${decimal(data.price)}, limit ${data.limitPrice}.`;
    case "routing":
      return quotesTable(data, row);
    case "routed":
      return decision(data, row);
    case "building":
      return (data.legs || []).map((leg) => `${leg.venue}: ${shortSig(leg.signature)}, min out `
        + amount(leg.minAmountOut, row.mints?.output)).join(" · ");
    case "submitted":
      return `Signatures: ${(data.signatures || []).map(shortSig).join(", ")}`;
    case "confirmed":
    case "partially_filled":
      return fill(status, data, row);
    case "failed":
      return h("span", { class: "reason" }, reasonText(data.error), data.attempts > 1 ? ` (${data.attempts} attempts)` : "");
    case "cancelled":
      return "Cancelled before it fired.";
    case "expired":
      return `Expired${data.expiresAt ? ` at ${new Date(data.expiresAt).toLocaleTimeString()}` : ""} before it could fire.`;
    default:
      return JSON.stringify(data);
  }
}

function quotesTable(data, row) {
  const out = row.mints?.output;
  const input = row.mints?.input;
  const table = h("table", { class: "quotes" },
    h("thead", {}, h("tr", {}, ["venue", "amount out", "fee", "impact", "took"].map((t) => h("th", {}, t)))),
    h("tbody", {}, (data.quotes || []).map((q) => h("tr", { "data-venue": q.venue },
      h("td", {}, q.venue), h("td", {}, amount(q.amountOut, out)), h("td", {}, amount(q.fee, input)),
      h("td", {}, percent(q.priceImpact)), h("td", {}, `${q.latencyMs} ms`)))));
  const failures = (data.failures || []).map((f) => h("div", { class: "reason" }, `${f.venue}: ${f.error}`));
  return [table, ...failures];
}

function decision(data, row) {
  const out = row.mints?.output;
  const input = row.mints?.input;
  const lines = [];
  if (data.venue === "split") {
    lines.push(h("strong", {}, "Split: "), (data.legs || []).map((leg) => `${leg.venue} ${leg.sharePct} % `
      + `(${amount(leg.amountIn, input)} → ${amount(leg.expectedAmountOut, out)})`).join(" + "));
    if (data.splitGainBps !== null && data.splitGainBps !== undefined) {
      lines.push(h("div", {}, `${data.splitGainBps} bps more than the best single venue`));
    }
  } else {
    lines.push(h("strong", {}, `Routed to ${data.venue}`));
    if (data.advantageBps !== null && data.advantageBps !== undefined) {
      lines.push(` · ${data.advantageBps} bps more than the other venue`);
    }
  }
  lines.push(h("div", {}, `Expected ${amount(data.expectedAmountOut, out)}, at least ${amount(data.minAmountOut, out)}`));
  const impacts = Object.entries(data.priceImpact || {}).map(([venue, impact]) => `${venue} ${percent(impact)}`);
  if (impacts.length) lines.push(h("div", {}, `Price impact: ${impacts.join(", ")}`));
  if (data.reason) lines.push(h("div", { class: "muted" }, data.reason));
  return h("div", { class: "decision" }, lines);
}

function fill(status, data, row) {
  const input = row.mints?.input;
  const out = row.mints?.output;
  const lines = [h("div", {}, `Sold ${amount(data.amountIn, input)}, got ${amount(data.amountOut, out)}`,
    data.executionPrice ? ` at ${decimal(data.executionPrice)}` : "", ` on ${data.venue}`)];
  lines.push(h("div", { class: "signature" }, "Signature ", h("code", { title: data.txHash || "" }, shortSig(data.txHash))));
  if (data.unfilledAmountIn) lines.push(h("div", {}, `Unfilled: ${amount(data.unfilledAmountIn, input)}`));
  for (const leg of data.legs || []) {
    lines.push(h("div", { class: leg.succeeded ? "" : "reason" }, `${leg.venue}: `,
      leg.succeeded ? `${amount(leg.amountIn, input)} → ${amount(leg.amountOut, out)}` : reasonText(leg.error)));
  }
  if (status === "partially_filled" && data.error) lines.push(h("div", { class: "reason" }, reasonText(data.error)));
  return lines;
}

/** Follow an order on its own stream socket from the last event shown (after a reload, from the recent list,
 *  or when the socket that carried it closed). */
function follow(row) {
  if (row.stream || row.terminal && row.lastSeq > 0) return;
  const stream = new WebSocket(socketUrl(`/api/orders/${row.id}/stream?after=${row.lastSeq}`));
  row.stream = stream;
  stream.addEventListener("message", (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "error") {
      row.refused = true;  // not to be asked again (unknown order, key refused…)
      row.note.textContent = `${event.error} (${event.status})`;
      if (event.status === 401) keyRefused(event.error);
    } else {
      receive(row, event);
    }
  });
  stream.addEventListener("close", () => {
    row.stream = null;
    if (!row.terminal && !row.refused && state.rows.get(row.id) === row && state.key) {
      setTimeout(() => follow(row), 1000);  // closed early (a restart, the network): on from the last seq shown
    }
  });
}

async function cancelOrder(row) {
  row.note.textContent = "";
  row.cancel.disabled = true;
  try {
    await api("DELETE", `/api/orders/${row.id}`);
    if (!row.source && !row.stream) follow(row);  // the cancelled event arrives on the order's socket
  } catch (error) {
    row.note.textContent = error.status === 409 ? "Too late to cancel: the order already fired or finished."
      : `${error.message} (${error.status})`;
  } finally {
    row.cancel.disabled = false;
  }
}

// --- recent orders --------------------------------------------------------------------------------

let recentTimer = null;

function scheduleRecent() {
  clearTimeout(recentTimer);
  recentTimer = setTimeout(loadRecent, 300);
}

async function loadRecent(older = false) {
  if (!state.key) return;
  const query = older && state.recentCursor ? `?limit=${PAGE}&before=${state.recentCursor}` : `?limit=${PAGE}`;
  let page;
  try {
    page = await api("GET", `/api/orders${query}`);
  } catch {
    return;
  }
  const body = $("#recent tbody");
  if (!older) body.replaceChildren();
  for (const order of page.orders) {
    const shown = state.rows.get(order.orderId);
    const seq = shown ? Math.max(shown.lastSeq, order.lastSeq) : order.lastSeq;
    body.append(h("tr", { "data-order-id": order.orderId, "data-status": order.status, "data-seq": seq },
      h("td", {}, new Date(order.createdAt).toLocaleTimeString()),
      h("td", {}, `${order.type} ${order.side}`),
      h("td", { title: `${order.baseAsset}/${order.quoteAsset}` },
        `${amount(order.amountIn, order.inputMint)} → ${symbol(order.outputMint)}`),
      h("td", {}, h("span", { class: "status", "data-tone": TONES[order.status] }, order.status.replace("_", " "))),
      h("td", {}, h("button", { type: "button", class: "small quiet open", onclick: () => openOrder(order.orderId) }, "open"))));
  }
  state.recentCursor = page.next;
  $("#older").hidden = !page.next;
}

function updateRecentStatus(orderId, status, seq) {
  const tr = $(`#recent tr[data-order-id="${orderId}"]`);
  if (!tr || Number(tr.dataset.seq) > seq) return;
  tr.dataset.status = status;
  tr.dataset.seq = seq;
  const badge = $(".status", tr);
  badge.textContent = status.replace("_", " ");
  badge.dataset.tone = TONES[status] ?? "";
}

function openOrder(orderId) {
  const row = ensureRow(orderId);
  follow(row);
  row.el.scrollIntoView({ block: "nearest" });
  row.el.classList.add("flash");
  setTimeout(() => row.el.classList.remove("flash"), 800);
}

// --- live pools and the simulation ------------------------------------------------------------------

async function refreshPools() {
  const { pairs } = await api("GET", "/api/markets");
  state.pairs = pairs;
  const learned = new Set();
  for (const pair of pairs) {
    for (const token of [pair.base, pair.quote]) {
      if (!state.tokens.has(token.mint)) learned.add(token.mint);
      state.tokens.set(token.mint, token);
    }
  }
  if (learned.size && state.rows.size) {
    for (const row of state.rows.values()) {
      if (row.mints && (learned.has(row.mints.input) || learned.has(row.mints.output))) redraw(row);
    }
    scheduleRecent();
  }
  const body = $("#pools tbody");
  body.replaceChildren(...pairs.flatMap((pair) => [
    h("tr", { class: "pair" }, h("th", { colspan: 4, title: `${pair.base.mint} / ${pair.quote.mint}` }, pair.pair)),
    ...pair.venues.map((venue) => h("tr", { "data-pair": pair.pair, "data-venue": venue.venue },
    h("td", { title: venue.pool }, venue.venue),
    h("td", {}, formatNumber(Number(venue.spotPrice))),
    h("td", { title: venue.baseDepth }, `${compact(venue.baseDepth)} ${pair.base.symbol}`),
    h("td", { title: venue.quoteDepth }, `${compact(venue.quoteDepth)} ${pair.quote.symbol}`)))]));
  $("#pools-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  const select = $("#move-form").elements.pair;
  const chosen = select.value;
  select.replaceChildren(...pairs.map((pair) => h("option", { value: pair.pair }, pair.pair)));
  if (chosen) select.value = chosen;
}

function startPolling() {
  stopPolling();
  state.poolsTimer = setInterval(() => {
    if (!document.hidden) refreshPools().catch(() => {});
  }, POOLS_EVERY_MS);
}

function stopPolling() {
  clearInterval(state.poolsTimer);
  state.poolsTimer = null;
}

async function movePrice(form) {
  const pair = state.pairs.find((p) => p.pair === form.elements.pair.value);
  const body = { baseAsset: pair?.base.mint ?? "", quoteAsset: pair?.quote.mint ?? "", price: form.elements.price.value.trim() };
  if (form.elements.venue.value) body.venue = form.elements.venue.value;
  const moved = await api("POST", "/api/sim/prices", body);
  await refreshPools();
  return `Spot now ${Object.entries(moved.spot).map(([v, p]) => `${v} ${formatNumber(Number(p))}`).join(", ")}; `
    + `limit orders fired: ${moved.limitOrdersFired}.`;
}

async function launchPool(form) {
  const body = {};
  for (const name of ["venue", "baseMint", "quoteAsset", "baseAmount", "quoteAmount", "symbol"]) {
    const value = form.elements[name].value.trim();
    if (value !== "") body[name] = value;
  }
  const decimals = form.elements.decimals.value.trim();
  if (decimals !== "") body.decimals = /^\d+$/.test(decimals) ? Number(decimals) : decimals;
  const launched = await api("POST", "/api/sim/launch", body);
  await refreshPools();
  return `${launched.symbol} opened on ${launched.venue} at ${decimal(launched.spot)}; snipers fired: ${launched.fired}, `
    + `refused: ${launched.refused}.`;
}

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** A fresh random 32-byte address in base58, for a token that has no pool yet. */
function randomMint() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  let n = bytes.reduce((acc, b) => (acc << 8n) + BigInt(b), 0n);
  let text = "";
  while (n > 0n) { text = BASE58[Number(n % 58n)] + text; n /= 58n; }
  for (const b of bytes) { if (b !== 0) break; text = "1" + text; }
  return text;
}

// --- wiring -------------------------------------------------------------------------------------------

/** Run a form's action: its errors next to the fields the server names, its result below it. */
function onSubmit(form, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const result = $(".result", form);
    if (result) result.textContent = "";
    if (!state.key) {
      showErrors($("#key-form"), { error: "enter an API key first", field: "X-API-Key" });
      return;
    }
    const button = $("button[type=submit]", form);
    button.disabled = true;
    try {
      const text = await action(form);
      if (result && text) result.textContent = text;
    } catch (error) {
      showErrors(form, { error: error.message, field: error.field, status: error.status });
    } finally {
      button.disabled = false;
    }
  });
}

function start() {
  const keyForm = $("#key-form");
  keyForm.elements.apiKey.value = state.key;
  keyForm.addEventListener("submit", (event) => { event.preventDefault(); useKey(keyForm.elements.apiKey.value); });
  $("#forget-key").addEventListener("click", () => { keyForm.elements.apiKey.value = ""; useKey(""); });

  const orderForm = $("#order-form");
  orderForm.elements.type.addEventListener("change", () => showKind(orderForm));
  orderForm.elements.side.addEventListener("change", () => showKind(orderForm));
  showKind(orderForm);
  onSubmit(orderForm, async (form) => { await submit(orderFromForm(form)); });
  onSubmit($("#move-form"), movePrice);
  const launchForm = $("#launch-form");
  launchForm.elements.baseMint.value = randomMint();
  onSubmit(launchForm, launchPool);
  $("#new-mint").addEventListener("click", () => { launchForm.elements.baseMint.value = randomMint(); });
  $("#snipe-mint").addEventListener("click", () => {
    orderForm.elements.type.value = "sniper";
    orderForm.elements.baseAsset.value = launchForm.elements.baseMint.value;
    orderForm.elements.quoteAsset.value = launchForm.elements.quoteAsset.value;
    showKind(orderForm);
  });
  $("#refresh-recent").addEventListener("click", () => loadRecent());
  $("#older").addEventListener("click", () => loadRecent(true));
  document.addEventListener("visibilitychange", () => { if (!document.hidden && state.poolsTimer) refreshPools().catch(() => {}); });
  if (state.key) useKey(state.key);
}

start();
