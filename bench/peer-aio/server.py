#!/usr/bin/python3
"""peer-aio: an ExHook server for handlers that wait on the network, written
with what a Python user picks for that: grpc.aio, aiohttp for HTTP and
redis.asyncio for Redis, all on one asyncio event loop. Used by
bench/compare.sh's io scenario as the Python peer of exhookd's
bench/scripts/http_auth.lua and redis_auth.lua, making the same decisions:

  http:  GET $AUTH_URL<username> (aiohttp, keep-alive, its default pool of
         100 connections): 200 with a JSON body {"allow": true} -> allowed,
         403 or 404 -> refused, any other answer -> the call fails
  redis: GET user:<username> on $REDIS_URL (redis.asyncio's pool): a value ->
         allowed, none -> refused
  sleep: allowed after $SUSPEND_SECONDS (asyncio.sleep): what a waiting call
         costs, for compare.sh's suspend scenario

OnClientAuthenticate answers allowed with STOP_AND_RETURN true, refused with
STOP_AND_RETURN false, and a failed lookup with gRPC UNAVAILABLE (the broker
then applies its failed_action). OnProviderLoaded registers
client.authenticate; the other rpcs get empty replies. emqx.exhook.v3 only.

usage: /usr/bin/python3 bench/peer-aio/server.py HOST:PORT http|redis|sleep
Needs Debian's python3-grpcio, python3-protobuf, python3-aiohttp,
python3-redis and protoc. Stops on SIGTERM or SIGINT.
"""

import asyncio
import os
import signal
import sys
import tempfile
from urllib.parse import quote

import aiohttp
import grpc
import redis.asyncio

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peer-python"))
from exhook_service import generic_handler, load_pb2  # noqa: E402


class StoreError(Exception):
    """The user store gave no usable answer."""


class HttpStore:
    def __init__(self, url):
        self.url = url
        self.session = aiohttp.ClientSession()

    async def allows(self, user):
        url = self.url + quote(user, safe="")
        async with self.session.get(url) as resp:
            if resp.status == 200:
                body = await resp.json(content_type=None)
                return isinstance(body, dict) and body.get("allow") is True
            if resp.status in (403, 404):
                return False
            raise StoreError("GET %s: status %d" % (url, resp.status))

    async def close(self):
        await self.session.close()


class RedisStore:
    def __init__(self, url):
        self.red = redis.asyncio.from_url(url)

    async def allows(self, user):
        return await self.red.get("user:" + user) is not None

    async def close(self):
        await self.red.close()


class SleepStore:
    def __init__(self, seconds):
        try:
            self.seconds = float(seconds)
        except ValueError:
            sys.exit("peer-aio: SUSPEND_SECONDS must be a number, not %r" % seconds)

    async def allows(self, user):
        await asyncio.sleep(self.seconds)
        return True

    async def close(self):
        pass


def open_store(mode):
    """The store of mode, where its environment variable says."""
    stores = {"http": (HttpStore, "AUTH_URL"), "redis": (RedisStore, "REDIS_URL"),
              "sleep": (SleepStore, "SUSPEND_SECONDS")}
    if mode not in stores:
        sys.exit("peer-aio: mode must be http, redis or sleep, not %r" % mode)
    cls, var = stores[mode]
    url = os.environ.get(var)
    if not url:
        sys.exit("peer-aio: mode %s needs %s in the environment" % (mode, var))
    return cls(url)


def make_handler(pb, store):
    VR = pb.ValuedResponse

    async def provider_loaded(req, ctx):
        return pb.LoadedResponse(hooks=[pb.HookSpec(name="client.authenticate")])

    async def authenticate(req, ctx):
        try:
            allowed = await store.allows(req.clientinfo.username)
        except Exception as e:  # any failure of the lookup fails the call
            await ctx.abort(grpc.StatusCode.UNAVAILABLE, "user lookup failed: %s" % e)
        return VR(type=VR.STOP_AND_RETURN, bool_result=allowed)

    async def empty(req, ctx):
        return pb.EmptySuccess()

    special = {"OnProviderLoaded": provider_loaded, "OnClientAuthenticate": authenticate}
    return generic_handler(pb, 3, special, empty)


async def serve(pb, addr, mode):
    store = open_store(mode)
    # so_reuseport off: a busy port must be an error, not a shared port.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((make_handler(pb, store),))
    try:
        server.add_insecure_port(addr)
    except RuntimeError as e:
        sys.exit("peer-aio: cannot listen on %s: %s" % (addr, e))
    await server.start()
    print("peer-aio: listening on", addr, "mode", mode, file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(2)
    await store.close()
    print("peer-aio: stopped", file=sys.stderr)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: server.py HOST:PORT http|redis|sleep")
    with tempfile.TemporaryDirectory(prefix="exhook-peer-aio.") as tmp:
        pb = load_pb2(tmp)
        asyncio.run(serve(pb, sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    main()
