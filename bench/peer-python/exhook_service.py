"""exhook_service: what the Python peers of bench/compare.sh share.

proto/exhook.proto's message classes, generated at start with Debian's protoc
(`protoc --python_out`, there is no grpc python plugin here), and the table of
rpc handlers that grpc's generic handler API takes for one generation of the
interface: emqx.exhook.v3 (EMQX 5.9+), v2 (5.0 - 5.8) and v1 (4.3, 4.4, where
two rpcs have other names). The messages of proto/exhook.proto decode all
three. Works for grpc.server and grpc.aio.server alike: the behaviours given
are plain or async functions.
"""

import os
import subprocess
import sys

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
# v1's names for two rpcs of v2/v3; their requests are the same.
V1_NAMES = {"OnClientAuthorize": "OnClientCheckAcl", "OnSessionTakenover": "OnSessionTakeovered"}


def load_pb2(tmp):
    """Generates exhook_pb2 into the folder tmp and imports it."""
    subprocess.run(["protoc", "-I" + PROTO_DIR, "--python_out=" + tmp,
                    os.path.join(PROTO_DIR, "exhook.proto")], check=True)
    sys.path.insert(0, tmp)
    import exhook_pb2
    return exhook_pb2


def authorize_hook_name(generation):
    """The name of the authorization hook that a broker of this generation knows."""
    return "client.check_acl" if generation == 1 else "client.authorize"


def generic_handler(pb, generation, special, empty):
    """The generic handler of emqx.exhook.v<generation>.HookProvider: the
    behaviours of special (by v3 method name) and empty for every other rpc."""
    handlers = {}
    for method in pb.DESCRIPTOR.services_by_name["HookProvider"].methods:
        req_cls = getattr(pb, method.input_type.name)
        resp_cls = getattr(pb, method.output_type.name)
        name = V1_NAMES.get(method.name, method.name) if generation == 1 else method.name
        handlers[name] = grpc.unary_unary_rpc_method_handler(
            special.get(method.name, empty),
            request_deserializer=req_cls.FromString,
            response_serializer=resp_cls.SerializeToString)
    return grpc.method_handlers_generic_handler(
        "emqx.exhook.v%d.HookProvider" % generation, handlers)
