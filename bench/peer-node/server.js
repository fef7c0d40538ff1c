// peer-node: an ExHook server for handlers that wait on the network, written
// with what a Node.js user picks for that: @grpc/grpc-js with
// @grpc/proto-loader (proto/exhook.proto read at start), the global fetch
// for HTTP (keep-alive by default) and `redis` from npm for Redis. Used by
// bench/compare.sh's io scenario as the Node peer of exhookd's
// bench/scripts/http_auth.lua and redis_auth.lua, making the same decisions:
//
//   http:  GET $AUTH_URL<username>: 200 with a JSON body {"allow": true} ->
//          allowed, 403 or 404 -> refused, any other answer -> the call fails
//   redis: GET user:<username> on $REDIS_URL (one connection, its commands
//          pipelined): a value -> allowed, none -> refused
//   sleep: allowed after $SUSPEND_SECONDS (a timer): what a waiting call
//          costs, for compare.sh's suspend scenario
//
// OnClientAuthenticate answers allowed with STOP_AND_RETURN true, refused with
// STOP_AND_RETURN false, and a failed lookup with gRPC UNAVAILABLE (the broker
// then applies its failed_action). OnProviderLoaded registers
// client.authenticate; the other rpcs get empty replies. emqx.exhook.v3 only.
//
// usage: node bench/peer-node/server.js HOST:PORT http|redis|sleep
// (bench/compare.sh installs the packages of package.json into
// bench/peer-node/node_modules). Stops on SIGTERM or SIGINT.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { createClient } = require('redis');

const PROTO = path.join(__dirname, '..', '..', 'proto', 'exhook.proto');

function die(msg) {
  console.error(`peer-node: ${msg}`);
  process.exit(1);
}

function httpStore(url) {
  return {
    async allows(user) {
      const res = await fetch(url + encodeURIComponent(user));
      if (res.status === 200) {
        const body = await res.json();
        return body !== null && body.allow === true;
      }
      await res.arrayBuffer(); // read to the end, so that the connection is kept
      if (res.status === 403 || res.status === 404) return false;
      throw new Error(`GET ${url}: status ${res.status}`);
    },
    async close() {},
  };
}

async function redisStore(url) {
  const red = createClient({ url });
  red.on('error', (e) => console.error(`peer-node: redis: ${e.message}`));
  await red.connect();
  return {
    async allows(user) {
      return (await red.get(`user:${user}`)) !== null;
    },
    async close() {
      await red.quit();
    },
  };
}

function sleepStore(seconds) {
  const ms = Number(seconds) * 1000;
  if (!(ms >= 0)) die(`SUSPEND_SECONDS must be a number, not '${seconds}'`);
  return {
    allows: () => new Promise((resolve) => setTimeout(resolve, ms, true)),
    async close() {},
  };
}

async function openStore(mode) {
  const stores = {
    http: [httpStore, 'AUTH_URL'],
    redis: [redisStore, 'REDIS_URL'],
    sleep: [sleepStore, 'SUSPEND_SECONDS'],
  };
  if (!(mode in stores)) die(`mode must be http, redis or sleep, not '${mode}'`);
  const [open, variable] = stores[mode];
  const url = process.env[variable];
  if (!url) die(`mode ${mode} needs ${variable} in the environment`);
  return open(url);
}

// Every rpc of the service: an empty reply, but for the two this peer serves.
function handlers(service, store) {
  const impl = {};
  for (const def of Object.values(service)) {
    impl[def.originalName] = (call, done) => done(null, {});
  }
  impl.OnProviderLoaded = (call, done) => done(null, { hooks: [{ name: 'client.authenticate' }] });
  impl.OnClientAuthenticate = (call, done) => {
    store.allows(call.request.clientinfo.username).then(
      (allowed) => done(null, { type: 'STOP_AND_RETURN', bool_result: allowed }),
      (e) => done({ code: grpc.status.UNAVAILABLE, details: `user lookup failed: ${e.message}` }),
    );
  };
  return impl;
}

async function main() {
  const [addr, mode] = process.argv.slice(2);
  if (!addr || !mode || process.argv.length !== 4) die('usage: server.js HOST:PORT http|redis|sleep');
  const store = await openStore(mode);
  const def = protoLoader.loadSync(PROTO, { keepCase: true, enums: String, defaults: true });
  const service = grpc.loadPackageDefinition(def).emqx.exhook.v3.HookProvider.service;
  const server = new grpc.Server();
  server.addService(service, handlers(service, store));
  server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) die(`cannot listen on ${addr}: ${err.message}`);
    console.error(`peer-node: listening on ${addr} mode ${mode}`);
  });
  const stop = () => {
    // Let calls in flight finish for up to 2 s, as peer-python does.
    const force = setTimeout(() => server.forceShutdown(), 2000);
    server.tryShutdown(async () => {
      clearTimeout(force);
      await store.close();
      console.error('peer-node: stopped');
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((e) => die(e.stack || e.message));
