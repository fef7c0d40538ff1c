#!/usr/bin/python3
"""peer-python: an ExHook server written the way most users write one today.

Python grpcio with grpc.server(futures.ThreadPoolExecutor(max_workers=10)),
answering with the decisions of scripts/example.lua. Used by bench/compare.sh
as the Python baseline for exhookd. It serves every generation of the
interface, so a broker of any version can load it: emqx.exhook.v3 (EMQX
5.9+), v2 (5.0 - 5.8) and v1 (4.3, 4.4, where two rpcs have other names).
The messages of proto/exhook.proto decode all three. OnProviderLoaded
registers the hooks under the names valid for the caller's generation
(client.check_acl for v1, client.authorize for v2/v3): a broker refuses the
whole list if one name is unknown to it.

usage: /usr/bin/python3 bench/peer-python/server.py HOST:PORT

Needs Debian's python3-grpcio, python3-protobuf and protoc (protobuf-compiler):
the message classes are generated at start into a temporary folder, and the
service is registered with a generic handler (exhook_service.py, shared with
bench/peer-aio). Stops on SIGTERM or SIGINT.
"""

import signal
import sys
import tempfile
from concurrent import futures

import grpc

from exhook_service import authorize_hook_name, generic_handler, load_pb2


def make_handler(pb, generation):
    """The generic handler of emqx.exhook.v<generation>.HookProvider."""
    VR = pb.ValuedResponse
    authz = authorize_hook_name(generation)

    def provider_loaded(req, ctx):
        hooks = [pb.HookSpec(name=n) for n in ("client.connected", "client.disconnected",
                                                "client.authenticate", authz)]
        hooks.append(pb.HookSpec(name="message.publish", topics=["demo/#"]))
        return pb.LoadedResponse(hooks=hooks)

    def authenticate(req, ctx):
        user = req.clientinfo.username
        if user == "gooduser":
            return VR(type=VR.STOP_AND_RETURN, bool_result=True)
        if user == "baduser":
            return VR(type=VR.STOP_AND_RETURN, bool_result=False)
        # An EMQX 5 broker refuses a client that every server IGNOREs.
        if generation == 1:
            return VR(type=VR.IGNORE)
        return VR(type=VR.CONTINUE, bool_result=True)

    def authorize(req, ctx):
        topic = req.topic
        if (req.type == pb.ClientAuthorizeRequest.PUBLISH and not req.clientinfo.is_superuser
                and (topic == "$SYS" or topic.startswith("$SYS/"))):
            return VR(type=VR.STOP_AND_RETURN, bool_result=False)
        return VR(type=VR.IGNORE)

    def publish(req, ctx):
        topic = req.message.topic
        if topic == "demo/in":
            reply = VR(type=VR.CONTINUE, message=req.message)
            reply.message.topic = "demo/out"
            reply.message.headers["x-exhookd"] = "rewritten"
            return reply
        if topic == "demo/drop":
            reply = VR(type=VR.STOP_AND_RETURN, message=req.message)
            reply.message.headers["allow_publish"] = "false"
            return reply
        return VR(type=VR.IGNORE)

    def empty(req, ctx):
        return pb.EmptySuccess()

    special = {"OnProviderLoaded": provider_loaded, "OnClientAuthenticate": authenticate,
               "OnClientAuthorize": authorize, "OnMessagePublish": publish}
    return generic_handler(pb, generation, special, empty)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: server.py HOST:PORT")
    # Take the stop signals synchronously in the main thread; the threads that
    # grpc and the executor start later inherit the blocked mask.
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    with tempfile.TemporaryDirectory(prefix="exhook-peer-py.") as tmp:
        pb = load_pb2(tmp)
        # so_reuseport off: a busy port must be an error, not a shared port.
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=10),
                             options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers(tuple(make_handler(pb, g) for g in (1, 2, 3)))
        try:
            server.add_insecure_port(sys.argv[1])
        except RuntimeError as e:
            sys.exit("peer-python: cannot listen on %s: %s" % (sys.argv[1], e))
        server.start()
        print("peer-python: listening on", sys.argv[1], file=sys.stderr, flush=True)
        sig = signal.sigwait(stop)
        server.stop(grace=2).wait()
        print("peer-python: stopped (signal %d)" % sig, file=sys.stderr)


if __name__ == "__main__":
    main()
