// Loaded with `node --require` by tests/test_editor_tools.py: the language server under test may
// not reach the network. Every outgoing TCP connection (HTTP, HTTPS, a proxy) fails at once, and
// is reported on stderr, where the test looks for it.
"use strict";
const net = require("net");

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const local = first && typeof first === "object" && typeof first.path === "string" &&
    first.host === undefined && first.port === undefined;
  if (local) {
    return connect.apply(this, args); // a local socket or pipe, not the network
  }
  const where = first && typeof first === "object" ? `${first.host}:${first.port}` : String(first);
  process.stderr.write(`reftool-test: network access refused: ${where}\n`);
  process.nextTick(() => this.destroy(new Error("network access refused by the test")));
  return this;
};
