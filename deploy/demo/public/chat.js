// chat.js: the demo chat page. One Socket.IO connection to namespace /chat of the gateway that
// served the page; the worker (deploy/demo/chat_worker.py) answers every event. User text only
// ever reaches the page through textContent, never innerHTML.
"use strict";

const $ = (id) => document.getElementById(id);
const wanted = new URLSearchParams(location.search).get("transport"); // polling | websocket
const socket = io("/chat", {
  autoConnect: false, // connect once a name is picked: it travels as auth {name}
  transports: wanted === "polling" || wanted === "websocket" ? [wanted] : ["polling", "websocket"],
});

let me = "";              // my name, once the worker welcomed me
let current = null;       // the room messages go to
const rooms = new Map();  // joined room -> [{sid, name}] online there (the worker reads the registry)

// ---- what the page shows ----

function setText(id, text) {
  $(id).textContent = text;
}

// Appends one line to the log: parts are [className, text] pairs, shown space-separated.
function say(kind, ...parts) {
  const li = document.createElement("li");
  li.className = kind;
  for (const [className, text] of parts) {
    const span = document.createElement("span");
    span.className = className;
    span.textContent = text;
    li.append(span, " ");
  }
  const log = $("log");
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.append(li);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

const notice = (room, text) => say("notice", ["room", "#" + room], ["text", text]);
const problem = (text) => say("error", ["text", text]);

function renderRooms() {
  const list = $("rooms");
  list.replaceChildren();
  for (const room of rooms.keys()) {
    const li = document.createElement("li");
    const pick = document.createElement("button");
    pick.textContent = "#" + room;
    pick.className = room === current ? "room current" : "room";
    pick.onclick = () => switchTo(room);
    const leave = document.createElement("button");
    leave.textContent = "×";
    leave.title = "leave #" + room;
    leave.className = "leave";
    leave.onclick = () => leaveRoom(room);
    li.append(pick, leave);
    list.append(li);
  }
  setText("online-room", current ? "#" + current : "–");
  $("to").placeholder = current ? "to: #" + current : "to: a name";
  renderOnline();
}

function renderOnline() {
  const list = $("online");
  list.replaceChildren();
  const names = new Set((rooms.get(current) || []).map((m) => m.name));
  for (const name of [...names].sort()) {
    const li = document.createElement("li");
    li.textContent = name === me ? name + " (you)" : name;
    li.onclick = () => {
      $("to").value = name === me ? "" : name;
      $("text").focus();
    };
    list.append(li);
  }
}

function showTransport(name) {
  setText("transport", name);
}

// ---- what the user does ----

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  setText("login-error", "");
  setText("state", "connecting…");
  socket.auth = { name: $("name").value.trim() }; // the worker decides whether it is valid
  socket.disconnect().connect();
});

$("join").addEventListener("submit", (event) => {
  event.preventDefault();
  const room = $("room").value.trim();
  if (room) joinRoom(room);
  $("room").value = "";
});

$("send").addEventListener("submit", (event) => {
  event.preventDefault();
  const to = $("to").value.trim();
  const text = $("text").value.trim();
  if (!text) return;
  if (to) socket.emit("private", { to, text }, reportError);
  else if (current) socket.emit("message", { room: current, text }, reportError);
  else return problem("Join a room first, or write to a name.");
  $("text").value = "";
});

function reportError(answer) {
  if (answer && answer.error) problem(answer.error);
}

function joinRoom(room) {
  socket.emit("join", room, (answer) => {
    if (answer.error) return problem(answer.error);
    if (!rooms.has(room)) rooms.set(room, []);
    current = room; // its member list follows, broadcast by the worker
    renderRooms();
  });
}

function leaveRoom(room) {
  socket.emit("leave", room, (answer) => {
    if (answer.error) return problem(answer.error);
    rooms.delete(room);
    notice(room, "You left the room.");
    if (current === room) current = rooms.keys().next().value || null;
    renderRooms();
  });
}

function switchTo(room) {
  current = room;
  renderRooms();
  refreshOnline();
}

// The worker broadcasts the list on every join and leave; this catches what those missed.
function refreshOnline() {
  const room = current;
  if (!room || !socket.connected) return;
  socket.emit("who", room, (answer) => {
    if (answer.members && rooms.has(room)) {
      rooms.set(room, answer.members);
      if (room === current) renderOnline();
    }
  });
}
setInterval(refreshOnline, 5000);

// ---- what the server says ----

socket.on("connect", () => {
  setText("state", "connected");
  const engine = socket.io.engine; // a new one after each reconnection
  showTransport(engine.transport.name);
  engine.once("upgrade", (transport) => showTransport(transport.name));
});

socket.on("connect_error", (err) => {
  if (socket.active) {
    setText("state", "reconnecting… (" + err.message + ")"); // the client retries by itself
  } else {
    setText("state", "refused"); // the worker said no: the client does not retry
    setText("login-error", "Refused: " + err.message);
  }
});

socket.on("disconnect", (reason) => {
  setText("state", "disconnected (" + reason + ")");
  setText("transport", "–");
});

socket.on("welcome", ({ name, node }) => {
  me = name;
  setText("me", name);
  setText("node", node);
  $("login").hidden = true;
  $("chat").hidden = false;
  // The worker put us in the lobby; after a reconnection, go back into the other rooms too.
  const before = [...rooms.keys()].filter((room) => room !== "lobby");
  rooms.clear();
  rooms.set("lobby", []);
  current = "lobby";
  renderRooms();
  before.forEach(joinRoom);
  $("text").focus();
});

// A room message: from the worker, or pushed by anyone (e.g. the broker's POST /v1/emit).
socket.on("said", ({ room, name, text }) => {
  say("message", ["room", "#" + room], ["name", name + ":"], ["text", text]);
});

socket.on("notice", ({ room, text }) => notice(room, text));

socket.on("private", (m) => {
  const who = m.from === me ? "you → " + m.to + ":" : m.from + " → you:";
  say("private", ["room", "private"], ["name", who], ["text", m.text]);
});

socket.on("members", ({ room, members }) => {
  if (!rooms.has(room)) return;
  rooms.set(room, members);
  if (room === current) renderOnline();
});

// A socket disconnected somewhere in the cluster: drop it from the lists it is in.
socket.on("gone", ({ sid, name }) => {
  for (const [room, members] of rooms) {
    if (!members.some((m) => m.sid === sid)) continue;
    const rest = members.filter((m) => m.sid !== sid);
    rooms.set(room, rest);
    if (!rest.some((m) => m.name === name)) notice(room, name + " has left.");
  }
  renderOnline();
});
