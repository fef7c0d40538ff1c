#!/usr/bin/python3
"""peer-python: an ExHook server written the way most users write one today.

Python grpcio with grpc.server(futures.ThreadPoolExecutor(max_workers=10)),
answering emqx.exhook.v3 with the decisions of scripts/example.lua. Used by
bench/compare.sh as the Python baseline for exhookd.

usage: /usr/bin/python3 bench/peer-python/server.py HOST:PORT

Needs Debian's python3-grpcio, python3-protobuf and protoc (protobuf-compiler):
the message classes are generated at start with `protoc --python_out` into a
temporary folder. There is no grpc python plugin here, so the service is
registered by hand with a generic handler. Stops on SIGTERM or SIGINT.
"""

import os
import signal
import subprocess
import sys
import tempfile
from concurrent import futures

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
SERVICE = "emqx.exhook.v3.HookProvider"


def load_pb2(tmp):
    subprocess.run(["protoc", "-I" + PROTO_DIR, "--python_out=" + tmp,
                    os.path.join(PROTO_DIR, "exhook.proto")], check=True)
    sys.path.insert(0, tmp)
    import exhook_pb2
    return exhook_pb2


def make_handlers(pb):
    VR = pb.ValuedResponse

    def provider_loaded(req, ctx):
        hooks = [pb.HookSpec(name=n) for n in ("client.connected", "client.disconnected",
                                                "client.authenticate", "client.authorize")]
        hooks.append(pb.HookSpec(name="message.publish", topics=["demo/#"]))
        return pb.LoadedResponse(hooks=hooks)

    def authenticate(req, ctx):
        user = req.clientinfo.username
        if user == "gooduser":
            return VR(type=VR.STOP_AND_RETURN, bool_result=True)
        if user == "baduser":
            return VR(type=VR.STOP_AND_RETURN, bool_result=False)
        return VR(type=VR.IGNORE)

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
    handlers = {}
    for method in pb.DESCRIPTOR.services_by_name["HookProvider"].methods:
        req_cls = getattr(pb, method.input_type.name)
        resp_cls = getattr(pb, method.output_type.name)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            special.get(method.name, empty),
            request_deserializer=req_cls.FromString,
            response_serializer=resp_cls.SerializeToString)
    return handlers


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
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, make_handlers(pb)),))
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
