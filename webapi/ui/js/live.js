// Live deletion progress over the websocket. The server pushes only this
// session's requests. After a drop the socket reconnects with exponential
// back-off and sends "watch" for every request still in flight, and the
// server answers with each one's current state, so nothing is missed.
// A request is known by its ID and its content digest: a submission that
// reused the ID with other content shares the ID, so its messages (which
// carry its own digest) are not this request's.

const MAX_BACKOFF_MS = 15000;
const BUFFER_REQUESTS = 50;

/**
 * belongsTo(msg, expect) reports whether a progress, state or outcome
 * message is about the request expect describes ({digest, contactIds}).
 * Messages without a digest (from before digests existed) are matched by
 * their contacts where they have them.
 */
export function belongsTo(msg, expect) {
  if (!expect) return true;
  const digest = msg.request_digest || (msg.outcome && msg.outcome.request_digest);
  if (digest && expect.digest) return digest === expect.digest;
  const ids = msg.type === 'outcome' ? msg.contact_ids : msg.outcome && msg.outcome.contact_ids;
  if (ids && expect.contactIds) {
    const a = [...new Set(ids)].sort();
    const b = [...new Set(expect.contactIds)].sort();
    return a.length === b.length && a.every((v, i) => v === b[i]);
  }
  return true;
}

class Live {
  constructor() {
    this.ws = null;
    this.state = 'idle'; // idle, connecting, open, reconnecting
    this.attempt = 0;
    this.timer = null;
    this.handlers = new Map(); // request_id → fn(msg)
    this.expect = new Map(); // request_id → {digest, contactIds}
    this.inflight = new Set(); // request IDs without an outcome yet
    this.buffer = new Map(); // request_id → messages that arrived before a handler
    this.listeners = new Set();
    this.contactWatchers = new Map(); // contact_id → Set of fn(msg)
    // Called when a connection attempt fails before opening; the app uses
    // it to notice a sign-in that has ended (the handshake's 401 is not
    // visible to scripts).
    this.onConnectFailed = () => {};
  }

  start() {
    if (this.state !== 'idle') return;
    this.connect();
  }

  stop() {
    this.state = 'idle';
    clearTimeout(this.timer);
    if (this.ws) { this.ws.onclose = null; this.ws.close(); this.ws = null; }
    this.handlers.clear();
    this.contactWatchers.clear();
    this.expect.clear();
    this.inflight.clear();
    this.buffer.clear();
    this.emit();
  }

  connect() {
    this.setState(this.attempt ? 'reconnecting' : 'connecting');
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/api/v1/ws`);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.setState('open');
      this.sendWatch([...this.inflight]);
      this.sendContactWatch();
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      this.dispatch(msg);
    };
    ws.onclose = () => {
      this.ws = null;
      if (this.state === 'idle') return;
      if (!opened) this.onConnectFailed();
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    this.setState('reconnecting');
    // Exponential back-off with jitter, so a restarted server is not
    // stampeded by every browser at once.
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { if (this.state !== 'idle') this.connect(); }, delay);
  }

  sendWatch(ids) {
    if (ids.length && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'watch', request_ids: ids }));
    }
  }

  /**
   * Follows a request: fn gets its progress, state and outcome messages.
   * expect ({digest, contactIds}, from the submission's answer) keeps out
   * messages about other content under the same ID.
   */
  track(requestId, fn, expect) {
    this.inflight.add(requestId);
    this.handlers.set(requestId, fn);
    if (expect) this.expect.set(requestId, expect);
    const early = this.buffer.get(requestId);
    this.buffer.delete(requestId);
    if (early) early.forEach((m) => this.dispatch(m));
    // Ask for the current state too: events may have gone by while the
    // socket was down.
    this.sendWatch([requestId]);
  }

  /**
   * Follows contacts shown on the page: fn gets {type: 'contact',
   * contact_id, request_id, status} or {…, hold} when a deletion of one is
   * decided or its legal hold changes, whoever asked. Returns the function
   * that stops following them.
   */
  watchContacts(ids, fn) {
    for (const id of ids) {
      if (!this.contactWatchers.has(id)) this.contactWatchers.set(id, new Set());
      this.contactWatchers.get(id).add(fn);
    }
    this.sendContactWatch();
    return () => {
      for (const id of ids) {
        const set = this.contactWatchers.get(id);
        if (set) { set.delete(fn); if (!set.size) this.contactWatchers.delete(id); }
      }
      this.sendContactWatch();
    };
  }

  sendContactWatch() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'watch_contacts', contact_ids: [...this.contactWatchers.keys()] }));
    }
  }

  untrack(requestId) {
    this.inflight.delete(requestId);
    this.handlers.delete(requestId);
    this.expect.delete(requestId);
  }

  dispatch(msg) {
    if (msg.type === 'contact') {
      const set = this.contactWatchers.get(msg.contact_id);
      if (set) [...set].forEach((fn) => fn(msg));
      return;
    }
    const id = msg.request_id;
    if (!id) return;
    const done = msg.type === 'outcome' || (msg.type === 'state' && msg.outcome);
    const fn = this.handlers.get(id);
    if (fn) {
      if (!belongsTo(msg, this.expect.get(id))) return;
      fn(msg);
    } else {
      // Progress can beat the HTTP response that tells us the request ID.
      const list = this.buffer.get(id) || [];
      list.push(msg);
      this.buffer.set(id, list);
      while (this.buffer.size > BUFFER_REQUESTS) this.buffer.delete(this.buffer.keys().next().value);
    }
    if (done) this.inflight.delete(id);
  }

  get connected() { return this.state === 'open'; }

  setState(s) { this.state = s; this.emit(); }
  onChange(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }
  emit() { this.listeners.forEach((fn) => fn(this.state)); }
}

export const live = new Live();
