// peer-cpp: a bare gRPC C++ ExHook server (callback API), used by
// bench/compare.sh as the "hand-written C++" baseline for exhookd. It serves
// every generation of the interface, so a broker of any version can load it:
// emqx.exhook.v3 (EMQX 5.9+), v2 (5.0 - 5.8) and v1 (4.3, 4.4). The three
// services take the same message types (proto/exhook.proto; the build
// generates the v1 and v2 services from it) and make the same decisions,
// those of scripts/example.lua, hard-coded:
//   authenticate: gooduser -> STOP_AND_RETURN true, baduser -> false; anyone
//                 else -> IGNORE on v1, CONTINUE true on v2/v3 (an EMQX 5
//                 broker refuses a client that every server IGNOREs)
//   authorize:    PUBLISH to $SYS/# by a non-superuser -> STOP_AND_RETURN false
//                 (v1: OnClientCheckAcl)
//   publish:      demo/in -> CONTINUE, topic demo/out + header x-exhookd;
//                 demo/drop -> STOP_AND_RETURN, header allow_publish=false
//   anything else: EmptySuccess / IGNORE.
// OnProviderLoaded registers the hooks above under the names valid for the
// caller's generation (client.check_acl for v1, client.authorize for v2/v3):
// a broker refuses the whole list if one name is unknown to it.
// Threads are gRPC's defaults: in 1.51 the callback API runs the handlers on
// clamp(cores / 2, 2, 16) "nexting_thread"s (2 on a 2-core machine), next to
// gRPC's own event-engine and timer threads. No logging per call.
//
// usage: peer-cpp HOST:PORT      (stops on SIGTERM or SIGINT)

#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include <pthread.h>

#include <grpcpp/grpcpp.h>

#include "exhook.grpc.pb.h"
#include "peer_v1.grpc.pb.h"
#include "peer_v2.grpc.pb.h"

namespace pb = emqx::exhook::v3; // the messages of every generation
using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

namespace {

ServerUnaryReactor *done(CallbackServerContext *ctx) {
  ServerUnaryReactor *r = ctx->DefaultReactor();
  r->Finish(grpc::Status::OK);
  return r;
}

// The MQTT filter "$SYS/#": "$SYS" itself and everything below it.
bool matches_sys(const std::string &topic) {
  return topic.compare(0, 4, "$SYS") == 0 && (topic.size() == 4 || topic[4] == '/');
}

#define EMPTY(Rpc, Req)                                                        \
  ServerUnaryReactor *Rpc(CallbackServerContext *ctx, const pb::Req *,         \
                          pb::EmptySuccess *) override {                       \
    return done(ctx);                                                          \
  }

ServerUnaryReactor *authorize(CallbackServerContext *ctx, const pb::ClientAuthorizeRequest *req,
                              pb::ValuedResponse *reply) {
  if (req->type() == pb::ClientAuthorizeRequest::PUBLISH &&
      !req->clientinfo().is_superuser() && matches_sys(req->topic())) {
    reply->set_type(pb::ValuedResponse::STOP_AND_RETURN);
    reply->set_bool_result(false);
  } else {
    reply->set_type(pb::ValuedResponse::IGNORE);
  }
  return done(ctx);
}

// The rpcs whose names are the same in every generation. `Service` is the
// generated callback service of one generation.
template <class Service> class Common : public Service {
public:
  explicit Common(int generation) : generation_(generation) {}

private:
  const int generation_;

  ServerUnaryReactor *OnProviderLoaded(CallbackServerContext *ctx,
                                       const pb::ProviderLoadedRequest *,
                                       pb::LoadedResponse *reply) override {
    const char *authz = generation_ == 1 ? "client.check_acl" : "client.authorize";
    for (const char *name : {"client.connected", "client.disconnected",
                             "client.authenticate", authz})
      reply->add_hooks()->set_name(name);
    pb::HookSpec *pub = reply->add_hooks();
    pub->set_name("message.publish");
    pub->add_topics("demo/#");
    return done(ctx);
  }

  ServerUnaryReactor *OnClientAuthenticate(CallbackServerContext *ctx,
                                           const pb::ClientAuthenticateRequest *req,
                                           pb::ValuedResponse *reply) override {
    const std::string &user = req->clientinfo().username();
    if (user == "gooduser" || user == "baduser") {
      reply->set_type(pb::ValuedResponse::STOP_AND_RETURN);
      reply->set_bool_result(user == "gooduser");
    } else if (generation_ == 1) {
      reply->set_type(pb::ValuedResponse::IGNORE);
    } else {
      reply->set_type(pb::ValuedResponse::CONTINUE);
      reply->set_bool_result(true);
    }
    return done(ctx);
  }

  ServerUnaryReactor *OnMessagePublish(CallbackServerContext *ctx,
                                       const pb::MessagePublishRequest *req,
                                       pb::ValuedResponse *reply) override {
    const std::string &topic = req->message().topic();
    if (topic == "demo/in") {
      reply->set_type(pb::ValuedResponse::CONTINUE);
      pb::Message *m = reply->mutable_message();
      *m = req->message();
      m->set_topic("demo/out");
      (*m->mutable_headers())["x-exhookd"] = "rewritten";
    } else if (topic == "demo/drop") {
      reply->set_type(pb::ValuedResponse::STOP_AND_RETURN);
      pb::Message *m = reply->mutable_message();
      *m = req->message();
      (*m->mutable_headers())["allow_publish"] = "false";
    } else {
      reply->set_type(pb::ValuedResponse::IGNORE);
    }
    return done(ctx);
  }

  EMPTY(OnProviderUnloaded, ProviderUnloadedRequest)
  EMPTY(OnClientConnect, ClientConnectRequest)
  EMPTY(OnClientConnack, ClientConnackRequest)
  EMPTY(OnClientConnected, ClientConnectedRequest)
  EMPTY(OnClientDisconnected, ClientDisconnectedRequest)
  EMPTY(OnClientSubscribe, ClientSubscribeRequest)
  EMPTY(OnClientUnsubscribe, ClientUnsubscribeRequest)
  EMPTY(OnSessionCreated, SessionCreatedRequest)
  EMPTY(OnSessionSubscribed, SessionSubscribedRequest)
  EMPTY(OnSessionUnsubscribed, SessionUnsubscribedRequest)
  EMPTY(OnSessionResumed, SessionResumedRequest)
  EMPTY(OnSessionDiscarded, SessionDiscardedRequest)
  EMPTY(OnSessionTerminated, SessionTerminatedRequest)
  EMPTY(OnMessageDelivered, MessageDeliveredRequest)
  EMPTY(OnMessageDropped, MessageDroppedRequest)
  EMPTY(OnMessageAcked, MessageAckedRequest)
};

// v2 and v3.
template <class Service> class Provider final : public Common<Service> {
public:
  using Common<Service>::Common;

private:
  ServerUnaryReactor *OnClientAuthorize(CallbackServerContext *ctx,
                                        const pb::ClientAuthorizeRequest *req,
                                        pb::ValuedResponse *reply) override {
    return authorize(ctx, req, reply);
  }
  EMPTY(OnSessionTakenover, SessionTakenoverRequest)
};

// v1 names two rpcs differently; their requests are the same.
class ProviderV1 final : public Common<emqx::exhook::v1::HookProvider::CallbackService> {
public:
  ProviderV1() : Common(1) {}

private:
  ServerUnaryReactor *OnClientCheckAcl(CallbackServerContext *ctx,
                                       const pb::ClientAuthorizeRequest *req,
                                       pb::ValuedResponse *reply) override {
    return authorize(ctx, req, reply);
  }
  EMPTY(OnSessionTakeovered, SessionTakenoverRequest)
};

} // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
    return 2;
  }
  // Block the stop signals before gRPC starts its threads (they inherit the
  // mask), then take them synchronously in main with sigwait.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  ProviderV1 v1;
  Provider<emqx::exhook::v2::HookProvider::CallbackService> v2(2);
  Provider<pb::HookProvider::CallbackService> v3(3);
  int port = 0;
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a busy port must be an error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(argv[1], grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&v1);
  builder.RegisterService(&v2);
  builder.RegisterService(&v3);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "peer-cpp: cannot listen on %s\n", argv[1]);
    return 1;
  }
  std::fprintf(stderr, "peer-cpp: listening on %s\n", argv[1]);

  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Wait();
  std::fprintf(stderr, "peer-cpp: stopped (signal %d)\n", sig);
  return 0;
}
