// ferretmq's web UI: one page, plain JavaScript, talking to the management
// API it is served with. Lists are paged, sorted and filtered by the server
// (RabbitMQ's page/sort/name parameters), so a page costs the same with ten
// queues or ten thousand.
"use strict";

const REFRESH_MS = Number(localStorage.getItem("ferretmq.refresh") || 5000);
const HISTORY = 120;
const $ = (sel, el = document) => el.querySelector(sel);
const main = () => $("#main");
let timer = null;

// ---- the API ---------------------------------------------------------------

function auth() { return sessionStorage.getItem("ferretmq.auth"); }

async function api(method, path, body) {
  const headers = { "content-type": "application/json" };
  if (auth()) headers.authorization = "Basic " + auth();
  // credentials "omit": the page sends its own Authorization header, and a
  // 401 must come back to it rather than open the browser's login dialog.
  const r = await fetch(path, { method, headers, credentials: "omit", body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401 && !path.startsWith("/api/whoami")) {
    const e = await r.json().catch(() => ({}));
    if (e.error === "not_authorized") { logout(); throw new Error("login required"); }
    throw new Error(e.reason || "not authorised");
  }
  if (r.status === 204) return null;
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const reason = data && data.reason !== undefined ? data.reason : r.statusText;
    throw new Error(typeof reason === "string" ? reason : JSON.stringify(reason));
  }
  return data;
}

const enc = encodeURIComponent;
const get = (p) => api("GET", p);

// ---- small helpers ---------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else if (v !== false && v != null) el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c == null) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function toast(text, bad) {
  const t = $("#toast");
  t.textContent = text;
  t.style.background = bad ? "#c93c3c" : "#1d2430";
  t.hidden = false;
  clearTimeout(toast.t);
  toast.t = setTimeout(() => (t.hidden = true), 4000);
}

async function act(label, f) {
  try { await f(); toast(label); return true; } catch (e) { toast(e.message, true); return false; }
}

function num(n) { return n == null ? "" : Number(n).toLocaleString("en-US"); }
function rate(n) { return n == null ? "" : (Math.round(n * 10) / 10).toLocaleString("en-US") + "/s"; }
function dig(o, path) { return path.split(".").reduce((v, k) => (v == null ? v : v[k]), o); }
function bytes(n) {
  if (n == null) return "";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (Math.round(n * 10) / 10) + " " + u[i];
}
// Refresh a page now and every REFRESH_MS. A page whose object is gone
// (deleted elsewhere: 404) says so and stops; other failures are shown and
// retried, never left as an unhandled rejection.
function every(f) {
  clearInterval(timer);
  const run = () => Promise.resolve().then(f).catch((e) => {
    if (e.message === "Not Found") {
      clearInterval(timer);
      main().replaceChildren(h("h1", { id: "gone" }, "Not found"), h("p", {}, "It was deleted, or never existed."));
    } else {
      toast(e.message, true);
    }
  });
  run();
  timer = setInterval(run, REFRESH_MS);
}

// ---- charts ----------------------------------------------------------------

// A live time series: `series` names the values; `push` adds a sample.
function chart(title, series, unit) {
  const box = h("div", { class: "panel chart", "data-title": title, "data-points": "0" }, h("h2", {}, title));
  const data = [[], ...series.map(() => [])];
  const colors = ["#d9622b", "#2859c5", "#2f9e5b", "#8a4fc7", "#c93c3c"];
  let plot = null;
  const make = () => {
    const width = Math.max(300, box.clientWidth - 32);
    plot = new uPlot({
      width, height: 220,
      scales: { x: { time: true } },
      axes: [{}, { values: (u, vals) => vals.map((v) => unit === "rate" ? v + "/s" : num(v)) }],
      series: [{}, ...series.map((s, i) => ({ label: s, stroke: colors[i % colors.length], width: 2, points: { show: false } }))],
    }, data, box);
  };
  return {
    el: box,
    push(values) {
      data[0].push(Date.now() / 1000);
      values.forEach((v, i) => data[i + 1].push(v || 0));
      if (data[0].length > HISTORY) data.forEach((d) => d.shift());
      box.dataset.points = String(data[0].length);
      box.dataset.last = JSON.stringify(values);
      if (!plot && box.isConnected) make();
      if (plot) plot.setData(data);
    },
  };
}

// ---- lists -----------------------------------------------------------------

const LISTS = {
  connections: {
    title: "Connections", path: "/api/connections",
    columns: [
      ["name", "Name"], ["user", "User"], ["vhost", "Vhost"], ["state", "State"], ["channels", "Channels", "num"],
      ["recv_oct_details.rate", "From client", "rate"], ["send_oct_details.rate", "To client", "rate"],
      ["client_properties.product", "Client"],
    ],
    actions: (c) => h("button", { class: "danger", onclick: () => act("connection closed",
      () => api("DELETE", `/api/connections/${enc(c.name)}`)).then(route) }, "Close"),
  },
  channels: {
    title: "Channels", path: "/api/channels",
    columns: [["name", "Name"], ["user", "User"], ["vhost", "Vhost"], ["state", "State"],
      ["consumer_count", "Consumers", "num"], ["prefetch_count", "Prefetch", "num"],
      ["messages_unacknowledged", "Unacked", "num"], ["message_stats.publish_details.rate", "Publish", "rate"]],
  },
  exchanges: {
    title: "Exchanges", path: "/api/exchanges",
    columns: [["name", "Name", "link"], ["vhost", "Vhost"], ["type", "Type"], ["durable", "Durable"],
      ["auto_delete", "Auto-delete"], ["internal", "Internal"], ["policy", "Policy"]],
    link: (x) => `#/exchange/${enc(x.vhost)}/${enc(x.name || "amq.default")}`,
    label: (x) => x.name || "(AMQP default)",
    form: addExchangeForm,
  },
  queues: {
    title: "Queues", path: "/api/queues",
    columns: [["name", "Name", "link"], ["vhost", "Vhost"], ["type", "Type"], ["state", "State"],
      ["messages_ready", "Ready", "num"], ["messages_unacknowledged", "Unacked", "num"], ["messages", "Total", "num"],
      ["consumers", "Consumers", "num"], ["message_stats.publish_details.rate", "Incoming", "rate"],
      ["message_stats.deliver_get_details.rate", "Deliver/get", "rate"], ["message_stats.ack_details.rate", "Ack", "rate"]],
    link: (q) => `#/queue/${enc(q.vhost)}/${enc(q.name)}`,
    form: addQueueForm,
  },
  consumers: {
    title: "Consumers", path: "/api/consumers", unpaged: true,
    columns: [["consumer_tag", "Tag"], ["queue.name", "Queue"], ["queue.vhost", "Vhost"], ["ack_required", "Ack required"],
      ["prefetch_count", "Prefetch", "num"], ["exclusive", "Exclusive"], ["channel_details.name", "Channel"]],
  },
  users: {
    title: "Users", path: "/api/users",
    columns: [["name", "Name"], ["tags", "Tags"], ["hashing_algorithm", "Hashing"]],
    actions: (u) => h("button", { class: "danger", onclick: () => confirm(`Delete user ${u.name}?`) &&
      act("user deleted", () => api("DELETE", `/api/users/${enc(u.name)}`)).then(route) }, "Delete"),
    form: addUserForm,
  },
  vhosts: {
    title: "Virtual hosts", path: "/api/vhosts",
    columns: [["name", "Name"], ["description", "Description"], ["messages_ready", "Ready", "num"],
      ["messages_unacknowledged", "Unacked", "num"], ["default_queue_type", "Default queue type"]],
    actions: (v) => h("button", { class: "danger", onclick: () => confirm(`Delete vhost ${v.name} and everything in it?`) &&
      act("vhost deleted", () => api("DELETE", `/api/vhosts/${enc(v.name)}`)).then(route) }, "Delete"),
    form: addVhostForm,
  },
  policies: {
    title: "Policies", path: "/api/policies",
    columns: [["name", "Name"], ["vhost", "Vhost"], ["pattern", "Pattern"], ["apply-to", "Apply to"],
      ["definition", "Definition"], ["priority", "Priority", "num"]],
    actions: (p) => h("button", { class: "danger", onclick: () =>
      act("policy deleted", () => api("DELETE", `/api/policies/${enc(p.vhost)}/${enc(p.name)}`)).then(route) }, "Delete"),
    form: addPolicyForm,
  },
};

function cell(row, [key, , kind], spec) {
  const v = dig(row, key);
  if (kind === "link") return h("td", {}, h("a", { href: spec.link(row) }, spec.label ? spec.label(row) : v));
  if (kind === "num") return h("td", { class: "num" }, num(v));
  if (kind === "rate") return h("td", { class: "num" }, key.startsWith("recv_oct") || key.startsWith("send_oct") ? bytes(v) + "/s" : rate(v));
  if (typeof v === "object" && v !== null) return h("td", {}, Array.isArray(v) ? v.join(", ") : JSON.stringify(v));
  return h("td", {}, v === undefined ? "" : String(v));
}

function listPage(kind) {
  const spec = LISTS[kind];
  const state = { page: 1, size: 50, sort: "", reverse: false, name: "", regex: false };
  const table = h("table", { id: `list-${kind}` });
  const pager = h("div", { class: "pager" });
  const filter = h("input", { placeholder: "Filter by name", id: "filter", oninput: () => { state.name = filter.value; state.page = 1; load(); } });
  const regex = h("label", {}, h("input", { type: "checkbox", onchange: (e) => { state.regex = e.target.checked; load(); } }), " regex");
  main().replaceChildren(
    h("h1", {}, spec.title),
    h("div", { class: "panel" }, h("div", { class: "toolbar" }, spec.unpaged ? null : filter, spec.unpaged ? null : regex, h("span", { class: "grow" }),
      h("span", { id: "count" })), table, pager),
    spec.form ? spec.form() : null);

  async function load() {
    const q = new URLSearchParams();
    if (!spec.unpaged) {
      q.set("page", state.page); q.set("page_size", state.size);
      if (state.name) { q.set("name", state.name); q.set("use_regex", state.regex); }
    }
    if (state.sort) { q.set("sort", state.sort); q.set("sort_reverse", state.reverse); }
    let data;
    try { data = await get(`${spec.path}?${q}`); } catch (e) { table.replaceChildren(h("tr", {}, h("td", { class: "error" }, e.message))); return; }
    // The user may have gone to another page while this was loading.
    if (!table.isConnected) return;
    const items = spec.unpaged ? data : data.items;
    const head = h("tr", {}, spec.columns.map(([key, label, kind]) => h("th", {
      class: [kind === "num" || kind === "rate" ? "num" : "", state.sort === key ? "sorted" : "", state.sort === key && state.reverse ? "rev" : ""].join(" ").trim(),
      onclick: () => { if (state.sort === key) state.reverse = !state.reverse; else { state.sort = key; state.reverse = false; } load(); },
    }, label)), spec.actions ? h("th", {}, "") : null);
    table.replaceChildren(head, ...items.map((row) => h("tr", {}, spec.columns.map((c) => cell(row, c, spec)),
      spec.actions ? h("td", {}, spec.actions(row)) : null)));
    if (spec.unpaged) { $("#count").textContent = `${items.length} items`; pager.replaceChildren(); return; }
    $("#count").textContent = `${num(data.filtered_count)} of ${num(data.total_count)}`;
    pager.replaceChildren(
      h("button", { class: "secondary", disabled: state.page <= 1, onclick: () => { state.page--; load(); } }, "‹ Prev"),
      `Page ${data.page} of ${data.page_count}`,
      h("button", { class: "secondary", disabled: state.page >= data.page_count, onclick: () => { state.page++; load(); } }, "Next ›"),
      h("select", { onchange: (e) => { state.size = Number(e.target.value); state.page = 1; load(); } },
        [20, 50, 100, 500].map((n) => h("option", { value: n, selected: n === state.size }, `${n} per page`))));
  }
  every(load);
}

// ---- forms -----------------------------------------------------------------

function field(label, input) { return [h("label", {}, label), input]; }
function vhostSelect(id) {
  const s = h("select", { id });
  get("/api/vhosts?columns=name").then((vs) => vs.forEach((v) => s.append(h("option", { value: v.name }, v.name)))).catch(() => {});
  return s;
}
function args(text) {
  if (!text.trim()) return {};
  try { return JSON.parse(text); } catch { throw new Error("arguments must be JSON, e.g. {\"x-max-length\": 1000}"); }
}

function addQueueForm() {
  const f = h("form", { class: "grid", id: "add-queue", onsubmit: (e) => {
    e.preventDefault();
    act("queue declared", () => api("PUT", `/api/queues/${enc($("#q-vhost").value)}/${enc($("#q-name").value)}`, {
      durable: $("#q-durable").value === "true", auto_delete: false,
      arguments: { ...args($("#q-args").value), ...($("#q-type").value === "classic" ? {} : { "x-queue-type": $("#q-type").value }) },
    })).then(route);
  } },
  field("Vhost", vhostSelect("q-vhost")), field("Name", h("input", { id: "q-name", required: true })),
  field("Type", h("select", { id: "q-type" }, ["classic", "quorum", "stream"].map((t) => h("option", {}, t)))),
  field("Durable", h("select", { id: "q-durable" }, h("option", { value: "true" }, "yes"), h("option", { value: "false" }, "no"))),
  field("Arguments (JSON)", h("textarea", { id: "q-args", placeholder: "{\"x-max-length\": 1000}" })),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Add queue")));
  return h("div", { class: "panel" }, h("h2", {}, "Add a queue"), f);
}

function addExchangeForm() {
  const f = h("form", { class: "grid", id: "add-exchange", onsubmit: (e) => {
    e.preventDefault();
    act("exchange declared", () => api("PUT", `/api/exchanges/${enc($("#x-vhost").value)}/${enc($("#x-name").value)}`, {
      type: $("#x-type").value, durable: $("#x-durable").value === "true", auto_delete: false, internal: false, arguments: args($("#x-args").value),
    })).then(route);
  } },
  field("Vhost", vhostSelect("x-vhost")), field("Name", h("input", { id: "x-name", required: true })),
  field("Type", h("select", { id: "x-type" }, ["direct", "fanout", "topic", "headers", "x-consistent-hash", "x-delayed-message"].map((t) => h("option", {}, t)))),
  field("Durable", h("select", { id: "x-durable" }, h("option", { value: "true" }, "yes"), h("option", { value: "false" }, "no"))),
  field("Arguments (JSON)", h("textarea", { id: "x-args" })),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Add exchange")));
  return h("div", { class: "panel" }, h("h2", {}, "Add an exchange"), f);
}

function addUserForm() {
  const f = h("form", { class: "grid", onsubmit: (e) => {
    e.preventDefault();
    act("user saved", () => api("PUT", `/api/users/${enc($("#u-name").value)}`, { password: $("#u-pass").value, tags: $("#u-tags").value })).then(route);
  } },
  field("Name", h("input", { id: "u-name", required: true })), field("Password", h("input", { id: "u-pass", type: "password" })),
  field("Tags", h("input", { id: "u-tags", placeholder: "management, monitoring, policymaker, administrator" })),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Add user")));
  return h("div", { class: "panel" }, h("h2", {}, "Add a user"), f);
}

function addVhostForm() {
  const f = h("form", { class: "grid", onsubmit: (e) => {
    e.preventDefault();
    act("vhost added", () => api("PUT", `/api/vhosts/${enc($("#v-name").value)}`, { description: $("#v-desc").value })).then(route);
  } },
  field("Name", h("input", { id: "v-name", required: true })), field("Description", h("input", { id: "v-desc" })),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Add vhost")));
  return h("div", { class: "panel" }, h("h2", {}, "Add a virtual host"), f);
}

function addPolicyForm() {
  const f = h("form", { class: "grid", onsubmit: (e) => {
    e.preventDefault();
    act("policy set", () => api("PUT", `/api/policies/${enc($("#p-vhost").value)}/${enc($("#p-name").value)}`, {
      pattern: $("#p-pattern").value, "apply-to": $("#p-apply").value, priority: Number($("#p-priority").value || 0), definition: args($("#p-def").value),
    })).then(route);
  } },
  field("Vhost", vhostSelect("p-vhost")), field("Name", h("input", { id: "p-name", required: true })),
  field("Pattern", h("input", { id: "p-pattern", required: true, placeholder: "^orders\\." })),
  field("Apply to", h("select", { id: "p-apply" }, ["all", "queues", "exchanges"].map((t) => h("option", {}, t)))),
  field("Priority", h("input", { id: "p-priority", type: "number", value: "0" })),
  field("Definition (JSON)", h("textarea", { id: "p-def", placeholder: "{\"max-length\": 10000}" })),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Set policy")));
  return h("div", { class: "panel" }, h("h2", {}, "Add or replace a policy"), f);
}

function publishForm(vhost, exchange, key) {
  const f = h("form", { class: "grid", id: "publish", onsubmit: (e) => {
    e.preventDefault();
    act("message published", async () => {
      const r = await api("POST", `/api/exchanges/${enc(vhost)}/${enc(exchange || "amq.default")}/publish`, {
        routing_key: $("#pub-key").value, payload: $("#pub-payload").value, payload_encoding: "string",
        properties: { delivery_mode: Number($("#pub-mode").value), headers: args($("#pub-headers").value) },
      });
      if (!r.routed) throw new Error("Message published, but not routed");
    });
  } },
  field("Routing key", h("input", { id: "pub-key", value: key || "" })),
  field("Delivery mode", h("select", { id: "pub-mode" }, h("option", { value: "1" }, "1 - transient"), h("option", { value: "2" }, "2 - persistent"))),
  field("Headers (JSON)", h("textarea", { id: "pub-headers" })),
  field("Payload", h("textarea", { id: "pub-payload" })),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Publish message")));
  return h("div", { class: "panel" }, h("h2", {}, "Publish a message"), f);
}

function bindingsTable(list, vhost) {
  return h("table", { class: "bindings" }, h("tr", {}, h("th", {}, "From"), h("th", {}, "To"), h("th", {}, "Routing key"), h("th", {}, "Arguments"), h("th", {}, "")),
    list.map((b) => h("tr", {}, h("td", {}, b.source || "(default)"), h("td", {}, `${b.destination_type} ${b.destination}`), h("td", {}, b.routing_key),
      h("td", {}, JSON.stringify(b.arguments)),
      h("td", {}, b.source ? h("button", { class: "secondary", onclick: () => act("unbound", () => api("DELETE",
        `/api/bindings/${enc(vhost)}/e/${enc(b.source)}/${b.destination_type === "queue" ? "q" : "e"}/${enc(b.destination)}/${enc(b.properties_key)}`)).then(route) }, "Unbind") : ""))));
}

// ---- pages -----------------------------------------------------------------

function overviewPage() {
  const cards = h("div", { class: "cards", id: "totals" });
  const rates = chart("Message rates", ["publish", "deliver / get", "ack"], "rate");
  const depth = chart("Queued messages", ["ready", "unacked"], "count");
  const node = h("div", { class: "panel", id: "node" });
  const nodes = h("div", { class: "panel", id: "nodes" });
  main().replaceChildren(h("h1", {}, "Overview"), cards, h("div", { class: "charts" }, rates.el, depth.el), node, nodes);
  every(async () => {
    const [o, members] = await Promise.all([get("/api/overview"), get("/api/nodes")]);
    // A cluster's members, each as it answered for itself (a node that did
    // not answer shows as down, with nothing else known).
    nodes.replaceChildren(h("h2", {}, "Nodes"), h("table", {},
      h("thead", {}, h("tr", {}, ["Name", "State", "Metadata", "Memory", "File descriptors", "Uptime"].map((c) => h("th", {}, c)))),
      h("tbody", {}, members.map((n) => h("tr", { class: "node", "data-name": n.name },
        h("td", {}, n.name), h("td", { class: n.running ? "" : "bad" }, n.running ? "running" : "down"),
        h("td", {}, dig(n, "metadata_store.raft_state") || "not clustered"),
        h("td", {}, n.running ? bytes(n.mem_used) : ""),
        h("td", {}, n.running ? `${num(n.fd_used)} / ${num(n.fd_total)}` : ""),
        h("td", {}, n.running ? `${Math.round(n.uptime / 1000)} s` : ""))))));
    const t = o.object_totals, q = o.queue_totals, m = o.message_stats || {};
    const card = (id, n, l) => h("div", { class: "card", id }, h("div", { class: "n" }, n), h("div", { class: "l" }, l));
    cards.replaceChildren(card("total-connections", num(t.connections), "Connections"), card("total-channels", num(t.channels), "Channels"),
      card("total-exchanges", num(t.exchanges), "Exchanges"), card("total-queues", num(t.queues), "Queues"), card("total-consumers", num(t.consumers), "Consumers"),
      card("total-ready", num(q.messages_ready), "Ready"), card("total-unacked", num(q.messages_unacknowledged), "Unacked"),
      card("rate-publish", rate(dig(m, "publish_details.rate") || 0), "Publish"),
      card("rate-deliver", rate(dig(m, "deliver_get_details.rate") || 0), "Deliver / get"));
    rates.push([dig(m, "publish_details.rate"), dig(m, "deliver_get_details.rate"), dig(m, "ack_details.rate")]);
    depth.push([q.messages_ready, q.messages_unacknowledged]);
    node.replaceChildren(h("h2", {}, "Node"), h("dl", { class: "props" },
      h("dt", {}, "Name"), h("dd", {}, o.node), h("dt", {}, "Version"), h("dd", {}, `${o.product_name} ${o.product_version}`),
      h("dt", {}, "Uptime"), h("dd", {}, `${Math.round(o.uptime / 1000)} s`),
      h("dt", {}, "Memory"), h("dd", {}, `${bytes(o.memory && o.memory.rss)} resident, messages ${bytes(o.memory && o.memory.message_bytes)} of ${bytes(o.memory && o.memory.limit)}`),
      h("dt", {}, "Listeners"), h("dd", {}, (o.listeners || []).map((l) => `${l.protocol} ${l.ip_address}:${l.port}`).join(", "))));
  });
}

function queuePage(vhost, name) {
  const path = `/api/queues/${enc(vhost)}/${enc(name)}`;
  const props = h("dl", { class: "props", id: "queue-props" });
  const depth = chart("Queued messages", ["ready", "unacked"], "count");
  const rates = chart("Message rates", ["publish", "deliver / get", "ack"], "rate");
  const bindings = h("div", { id: "queue-bindings" });
  const consumers = h("div", { id: "queue-consumers" });
  const got = h("div", { id: "got" });
  const getForm = h("form", { class: "grid", id: "get", onsubmit: (e) => {
    e.preventDefault();
    act("messages fetched", async () => {
      const msgs = await api("POST", `${path}/get`, { count: Number($("#get-count").value), ackmode: $("#get-ack").value, encoding: "auto", truncate: 50000 });
      got.replaceChildren(msgs.length ? "" : "Queue is empty", ...msgs.map((m, i) => h("div", { class: "message" },
        h("b", {}, `Message ${i + 1}`), ` exchange "${m.exchange}", routing key "${m.routing_key}", ${m.redelivered ? "redelivered" : "first delivery"}, ${m.message_count} left`,
        h("pre", { class: "msg" }, m.payload))));
    });
  } },
  field("Ack mode", h("select", { id: "get-ack" }, ["ack_requeue_true", "ack_requeue_false", "reject_requeue_true", "reject_requeue_false"].map((a) => h("option", {}, a)))),
  field("Messages", h("input", { id: "get-count", type: "number", value: "1", min: "1" })),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Get messages")));
  const bindForm = h("form", { class: "grid", id: "bind", onsubmit: (e) => {
    e.preventDefault();
    act("bound", () => api("POST", `/api/bindings/${enc(vhost)}/e/${enc($("#bind-x").value)}/q/${enc(name)}`, { routing_key: $("#bind-key").value, arguments: {} })).then(route);
  } }, field("From exchange", h("input", { id: "bind-x", required: true })), field("Routing key", h("input", { id: "bind-key" })),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Bind")));
  main().replaceChildren(
    h("h1", {}, `Queue ${name}`, h("span", { class: "muted" }, ` in ${vhost}`)),
    h("div", { class: "two" }, h("div", { class: "panel" }, h("h2", {}, "Details"), props), h("div", {}, depth.el)),
    rates.el,
    h("div", { class: "panel" }, h("h2", {}, "Consumers"), consumers),
    h("div", { class: "panel" }, h("h2", {}, "Bindings"), bindings, bindForm),
    publishForm(vhost, "", name),
    h("div", { class: "panel" }, h("h2", {}, "Get messages"), getForm, got),
    h("div", { class: "panel" }, h("h2", {}, "Purge or delete"), h("div", { class: "toolbar" },
      h("button", { class: "secondary", id: "purge", onclick: () => act("queue purged", () => api("DELETE", `${path}/contents`)) }, "Purge messages"),
      h("button", { class: "danger", id: "delete", onclick: () => confirm(`Delete queue ${name}?`) &&
        act("queue deleted", () => api("DELETE", path)).then((ok) => ok && (location.hash = "#/queues")) }, "Delete queue"))));
  every(async () => {
    const q = await get(path);
    const row = (k, v) => [h("dt", {}, k), h("dd", { "data-key": k }, v)];
    props.replaceChildren(...row("Type", q.type), ...row("State", q.state), ...row("Durable", String(q.durable)),
      ...row("Ready", num(q.messages_ready)), ...row("Unacked", num(q.messages_unacknowledged)), ...row("Total", num(q.messages)),
      ...row("Bytes", bytes(q.message_bytes)), ...row("Consumers", num(q.consumers)), ...row("Policy", q.policy || "none"),
      ...row("Arguments", JSON.stringify(q.arguments)));
    depth.push([q.messages_ready, q.messages_unacknowledged]);
    const m = q.message_stats || {};
    rates.push([dig(m, "publish_details.rate"), dig(m, "deliver_get_details.rate"), dig(m, "ack_details.rate")]);
    bindings.replaceChildren(bindingsTable(await get(`${path}/bindings`), vhost));
    const cs = (await get(`/api/consumers/${enc(vhost)}`)).filter((c) => c.queue && c.queue.name === name);
    consumers.replaceChildren(cs.length ? h("table", {}, h("tr", {}, h("th", {}, "Tag"), h("th", {}, "Channel"), h("th", {}, "Ack required"), h("th", {}, "Prefetch")),
      cs.map((c) => h("tr", {}, h("td", {}, c.consumer_tag), h("td", {}, dig(c, "channel_details.name")), h("td", {}, String(c.ack_required)), h("td", {}, num(c.prefetch_count))))) : "No consumers");
  });
}

function exchangePage(vhost, name) {
  const real = name === "amq.default" ? "" : name;
  const path = `/api/exchanges/${enc(vhost)}/${enc(name)}`;
  const props = h("dl", { class: "props" });
  const bindings = h("div", {});
  main().replaceChildren(h("h1", {}, `Exchange ${real || "(AMQP default)"}`, h("span", {}, ` in ${vhost}`)),
    h("div", { class: "panel" }, h("h2", {}, "Details"), props),
    h("div", { class: "panel" }, h("h2", {}, "Bindings from here"), bindings),
    publishForm(vhost, name, ""),
    real && !real.startsWith("amq.") ? h("div", { class: "panel" }, h("button", { class: "danger", onclick: () => confirm(`Delete exchange ${real}?`) &&
      act("exchange deleted", () => api("DELETE", path)).then((ok) => ok && (location.hash = "#/exchanges")) }, "Delete exchange")) : null);
  every(async () => {
    const x = await get(path);
    props.replaceChildren(h("dt", {}, "Type"), h("dd", {}, x.type), h("dt", {}, "Durable"), h("dd", {}, String(x.durable)),
      h("dt", {}, "Auto-delete"), h("dd", {}, String(x.auto_delete)), h("dt", {}, "Internal"), h("dd", {}, String(x.internal)),
      h("dt", {}, "Arguments"), h("dd", {}, JSON.stringify(x.arguments)), h("dt", {}, "Policy"), h("dd", {}, x.policy || "none"));
    bindings.replaceChildren(real ? bindingsTable(await get(`${path}/bindings/source`), vhost) : "Every queue, by its name");
  });
}

function adminPage() {
  const file = h("input", { type: "file", id: "defs-file", accept: "application/json" });
  main().replaceChildren(h("h1", {}, "Definitions"),
    h("div", { class: "panel" }, h("h2", {}, "Export"), h("p", {}, "Users, vhosts, permissions, policies, parameters, exchanges, queues and bindings as one RabbitMQ-compatible JSON file."),
      h("button", { id: "export", onclick: () => act("definitions exported", async () => {
        const d = await get("/api/definitions");
        const a = h("a", { href: URL.createObjectURL(new Blob([JSON.stringify(d, null, 2)], { type: "application/json" })), download: "definitions.json" });
        document.body.append(a); a.click(); a.remove();
      }) }, "Download definitions.json")),
    h("div", { class: "panel" }, h("h2", {}, "Import"), h("p", {}, "The file is checked whole before anything changes."), h("div", { class: "toolbar" }, file,
      h("button", { id: "import", onclick: () => act("definitions imported", async () => {
        if (!file.files[0]) throw new Error("choose a file first");
        await api("POST", "/api/definitions", JSON.parse(await file.files[0].text()));
      }) }, "Upload"))));
}

function loginPage() {
  clearInterval(timer);
  const err = h("p", { class: "error", id: "login-error" });
  main().replaceChildren(h("div", { class: "panel login" }, h("h1", {}, "Log in to ferretmq"),
    h("form", { class: "grid", id: "login", onsubmit: async (e) => {
      e.preventDefault();
      sessionStorage.setItem("ferretmq.auth", btoa(`${$("#username").value}:${$("#password").value}`));
      try {
        const me = await api("GET", "/api/whoami");
        sessionStorage.setItem("ferretmq.user", me.name);
        // A deep link opened before logging in stays where it pointed.
        if (/^#?\/?(login)?$/.test(location.hash)) location.hash = "#/";
        route();
      } catch (x) {
        sessionStorage.removeItem("ferretmq.auth");
        err.textContent = "Login failed (" + x.message + ")";
      }
    } }, field("Username", h("input", { id: "username", autocomplete: "username", required: true })),
    field("Password", h("input", { id: "password", type: "password", autocomplete: "current-password" })),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Log in"))), err));
}

function logout() {
  sessionStorage.removeItem("ferretmq.auth");
  sessionStorage.removeItem("ferretmq.user");
  location.hash = "#/login";
  route();
}

// ---- routing ---------------------------------------------------------------

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const parts = hash.split("/").map(decodeURIComponent);
  const logged = !!auth();
  $("#nav").hidden = !logged;
  $("#logout").hidden = !logged;
  $("#who").textContent = logged ? sessionStorage.getItem("ferretmq.user") || "" : "";
  if (!logged || parts[0] === "login") return loginPage();
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === "#/" + (parts[0] || "")));
  if (!parts[0]) return overviewPage();
  if (LISTS[parts[0]]) return listPage(parts[0]);
  if (parts[0] === "queue") return queuePage(parts[1], parts.slice(2).join("/"));
  if (parts[0] === "exchange") return exchangePage(parts[1], parts.slice(2).join("/"));
  if (parts[0] === "admin") { clearInterval(timer); return adminPage(); }
  main().replaceChildren(h("h1", {}, "Not found"));
}

$("#logout").addEventListener("click", logout);
window.addEventListener("hashchange", route);
route();
