// The web blotter, on the engine's public API only: REST for the ticket, the quote preview and the first page of
// orders; the WebSocket's account stream for every update of every order, and its market stream for the pools.
// No library and no build step: the app serves this file as it is. URLs are relative, so the page works under a
// stage prefix (/api/app on AWS) as well as locally (/app).
"use strict";

const CANCELLABLE = new Set(["pending", "routing", "building", "open", "triggered"]);
const SPARK_POINTS = 40;
const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  socket: null,
  lastAt: null, // the at of the last order update seen: a reconnect asks for what came since
  orders: new Map(), // orderId -> {row, seq, events: [{status, at}]}
  pools: new Map(), // poolId -> {row, slot, prices}
  quoteTimer: null,
};

const el = (tag, attributes = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
};

function notice(message) {
  const box = $("notice");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const answer = response.headers.get("Content-Type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const fields = (answer?.errors || []).map((e) => `${e.field}: ${e.message}`).join("; ");
    const error = new Error(answer?.detail ? `${answer.detail}${fields && !answer.detail.includes(fields) ? ` (${fields})` : ""}` : `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return answer;
}

// Signing in --------------------------------------------------------------------------------------------------------

function userOf(token) {
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub;
  } catch {
    return null;
  }
}

async function signIn(token) {
  const user = userOf(token);
  if (!user) {
    notice("That is not a token this engine issues (a JWT with a sub).");
    return;
  }
  state.token = token;
  sessionStorage.setItem("order-engine-token", token);
  $("who").textContent = `Signed in as ${user}`;
  $("sign-in").hidden = true;
  $("desk").hidden = false;
  $("sign-out").hidden = false;
  notice("");
  try {
    await Promise.all([loadTokens(), loadOrders()]);
  } catch (error) {
    notice(`Could not load your orders: ${error.message}`);
  }
  connect();
}

function signOut() {
  sessionStorage.removeItem("order-engine-token");
  state.token = null;
  if (state.socket) state.socket.close();
  location.hash = "";
  location.reload();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("token").value.trim());
});

$("user-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const minted = await api("POST", "local/tokens", { user: $("user").value.trim() });
    await signIn(minted.token);
  } catch (error) {
    notice(error.status === 404 ? "This stage does not mint tokens: sign in with a token." : error.message);
  }
});

$("sign-out").addEventListener("click", signOut);

// The ticket and its live quote ----------------------------------------------------------------------------------

async function loadTokens() {
  const { tokens } = await api("GET", "tokens");
  for (const select of [$("token-in"), $("token-out")]) {
    select.replaceChildren(...tokens.map((t) => el("option", { value: t.symbol }, t.symbol)));
  }
  $("token-in").value = "SOL";
  $("token-out").value = "USDC";
}

function orderType() {
  return $("order-type").value;
}

function showFieldsFor(type) {
  for (const node of document.querySelectorAll(".market-only, .limit-only, .sniper-only")) {
    node.classList.toggle("hide", !node.classList.contains(`${type}-only`));
  }
  schedulePreview();
}

function ticketBody() {
  const type = orderType();
  const value = (id) => $(id).value.trim();
  const body = { type, tokenIn: value("token-in"), tokenOut: value("token-out"), amountIn: value("amount") };
  if (type === "sniper" && value("target")) body.tokenOut = value("target");
  if (type !== "limit" && value("slippage")) body.slippageBps = Number(value("slippage"));
  if (type === "limit") {
    body.limitPrice = value("limit-price");
    body.timeInForce = value("tif");
  }
  if ((type === "limit" && body.timeInForce === "GTD") || type === "sniper") body.expiresAt = value("expires-at");
  if (type === "sniper" && value("max-price")) body.maxPrice = value("max-price");
  if (value("client-id")) body.clientOrderId = value("client-id");
  return body;
}

function schedulePreview() {
  clearTimeout(state.quoteTimer);
  state.quoteTimer = setTimeout(preview, 250);
}

async function preview() {
  const body = ticketBody();
  const summary = $("preview-summary");
  const legs = $("preview-legs");
  if (orderType() === "sniper" || !body.amountIn || body.tokenIn === body.tokenOut) {
    summary.textContent = orderType() === "sniper" ? "A sniper waits for its pool to open: no quote yet." : "Enter an amount for a live quote.";
    legs.replaceChildren();
    return;
  }
  const query = new URLSearchParams({ tokenIn: body.tokenIn, tokenOut: body.tokenOut, amountIn: body.amountIn,
    slippageBps: String(body.slippageBps || 50) });
  try {
    const quote = await api("GET", `quote?${query}`);
    summary.textContent = `${quote.inAmount} ${quote.tokenIn} → ${quote.outAmount} ${quote.tokenOut} via ${quote.venue}; ` +
      `price impact ${quote.priceImpactPct}%; minimum out ${quote.otherAmountThreshold}` +
      (quote.gainBps && quote.gainBps !== "0" ? `; ${quote.gainBps} bp better than one pool` : "");
    legs.replaceChildren(...quote.routePlan.map((leg) => el("li", {},
      `${leg.percent}%: ${leg.inAmount} ${leg.tokenIn} → ${leg.outAmount} ${leg.tokenOut} on ${leg.venue} (${leg.poolId})`)));
  } catch (error) {
    summary.textContent = `No quote: ${error.message}`;
    legs.replaceChildren();
  }
}

for (const id of ["order-type", "token-in", "token-out", "amount", "slippage"]) {
  $(id).addEventListener("input", schedulePreview);
}
$("order-type").addEventListener("change", () => showFieldsFor(orderType()));

$("ticket").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const accepted = await api("POST", "orders", ticketBody());
    notice("");
    ensureOrder({ orderId: accepted.orderId, type: orderType(), tokenIn: $("token-in").value,
      tokenOut: orderType() === "sniper" && $("target").value.trim() ? $("target").value.trim() : $("token-out").value,
      amountIn: $("amount").value.trim(), status: "pending" });
    $("client-id").value = "";
  } catch (error) {
    notice(`Order refused: ${error.message}`);
  }
});

// Orders -----------------------------------------------------------------------------------------------------------

async function loadOrders() {
  const page = await api("GET", "orders?limit=50");
  for (const order of page.orders.reverse()) {
    const row = ensureOrder(order);
    setStatus(order.orderId, order.status, null, order.venue, order.execution?.amountOut);
    row.dataset.loaded = "1";
  }
}

function ensureOrder(order) {
  const known = state.orders.get(order.orderId);
  if (known) return known.row;
  const cancel = el("button", { type: "button", class: "cancel", "aria-label": `Cancel order ${order.orderId}` }, "Cancel");
  cancel.addEventListener("click", () => send({ action: "cancel", orderId: order.orderId }));
  const row = el("tr", { "data-order-id": order.orderId },
    el("td", { title: order.orderId }, el("code", {}, order.orderId.slice(0, 8))),
    el("td", {}, order.type || order.orderType || ""), el("td", {}, `${order.tokenIn}→${order.tokenOut}`),
    el("td", {}, order.amountIn), el("td", { class: "status" }, order.status || ""), el("td", { class: "seq" }, ""),
    el("td", { class: "venue" }, ""), el("td", { class: "out" }, ""), el("td", { class: "steps" }, ""),
    el("td", {}, cancel));
  $("orders").tBodies[0].prepend(row);
  state.orders.set(order.orderId, { row, seq: 0, events: [] });
  return row;
}

function setStatus(orderId, status, seq, venue, amountOut) {
  const { row } = state.orders.get(orderId);
  const cell = row.querySelector(".status");
  cell.textContent = status;
  cell.className = `status status-${status}`;
  if (seq !== null) row.querySelector(".seq").textContent = String(seq);
  if (venue) row.querySelector(".venue").textContent = venue;
  if (amountOut) row.querySelector(".out").textContent = amountOut;
  row.querySelector("button.cancel").classList.toggle("hide", !CANCELLABLE.has(status));
}

function onUpdate(frame) {
  ensureOrder({ orderId: frame.orderId, tokenIn: frame.data.tokenIn || "?", tokenOut: frame.data.tokenOut || "?",
    amountIn: frame.data.amountIn || "", type: frame.data.type || "" });
  const order = state.orders.get(frame.orderId);
  if (frame.at > (state.lastAt || "")) state.lastAt = frame.at;
  if (frame.seq <= order.seq) return; // already shown (a replay after a reconnect)
  order.seq = frame.seq;
  order.events.push({ status: frame.status, at: Date.parse(frame.at) });
  setStatus(frame.orderId, frame.status, frame.seq, frame.data.venue, frame.data.amountOut);
  const steps = order.events.map((e, n) => n === 0 ? e.status : `${e.status} +${e.at - order.events[n - 1].at} ms`);
  order.row.querySelector(".steps").textContent = steps.join(" → ");
}

// Pools ------------------------------------------------------------------------------------------------------------

function onPool(frame) {
  let pool = state.pools.get(frame.poolId);
  if (!pool) {
    const row = el("tr", { "data-pool-id": frame.poolId }, el("td", {}, frame.poolId), el("td", { class: "price" }),
      el("td", { class: "reserves" }), el("td", { class: "slot" }), el("td", {}, spark()));
    $("pools").tBodies[0].append(row);
    pool = { row, slot: -1, prices: [] };
    state.pools.set(frame.poolId, pool);
  }
  if (frame.slot < pool.slot) return; // an older state than the one shown
  pool.slot = frame.slot;
  pool.prices = [...pool.prices, Number(frame.price)].slice(-SPARK_POINTS);
  pool.row.querySelector(".price").textContent = `${frame.price} ${frame.quote}`;
  pool.row.querySelector(".reserves").textContent = `${frame.reserves.base} ${frame.base} / ${frame.reserves.quote} ${frame.quote}`;
  pool.row.querySelector(".slot").textContent = String(frame.slot);
  drawSpark(pool.row.querySelector("svg"), pool.prices);
}

function spark() {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 100 20");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "recent price");
  svg.append(document.createElementNS("http://www.w3.org/2000/svg", "polyline"));
  return svg;
}

function drawSpark(svg, prices) {
  const low = Math.min(...prices);
  const high = Math.max(...prices);
  const span = high - low || 1;
  const step = prices.length > 1 ? 100 / (prices.length - 1) : 0;
  const points = prices.map((p, n) => `${(n * step).toFixed(1)},${(19 - ((p - low) / span) * 18).toFixed(1)}`);
  svg.firstChild.setAttribute("points", points.join(" "));
  svg.setAttribute("aria-label", `recent price, ${prices.length} changes, last ${prices[prices.length - 1]}`);
}

// The WebSocket ------------------------------------------------------------------------------------------------------

function send(message) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(message));
  else notice("Not connected: try again in a moment.");
}

function connect() {
  const url = document.querySelector('meta[name="websocket-url"]').content;
  const socket = new WebSocket(`${url}?token=${encodeURIComponent(state.token)}`);
  state.socket = socket;
  socket.addEventListener("open", () => {
    $("stream-state").textContent = "Live";
    socket.send(JSON.stringify(state.lastAt ? { action: "subscribeAccount", since: state.lastAt } : { action: "subscribeAccount" }));
    socket.send(JSON.stringify({ action: "subscribeMarket" }));
  });
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "order.update") onUpdate(frame);
    else if (frame.type === "order.created") ensureOrder({ ...frame, type: frame.orderType });
    else if (frame.type === "pool.update") onPool(frame);
    else if (frame.type === "order.cancel") notice(""); // its update comes on the account stream
    else if (frame.type === "error") notice(`${frame.action || "request"} refused: ${frame.error.detail}`);
  });
  socket.addEventListener("close", () => {
    if (state.socket !== socket || !state.token) return;
    $("stream-state").textContent = "Reconnecting…";
    setTimeout(connect, 1000); // then what came since the last update seen
  });
}

// Start ------------------------------------------------------------------------------------------------------------

showFieldsFor("market");
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromHash) history.replaceState(null, "", location.pathname + location.search); // not left in the address bar
const saved = fromHash || sessionStorage.getItem("order-engine-token");
if (saved) signIn(saved);
