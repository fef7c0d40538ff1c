// peer-cpp: a bare gRPC C++ ExHook server (emqx.exhook.v3, callback API),
// used by bench/compare.sh as the "hand-written C++" baseline for exhookd.
// It answers with the decisions of scripts/example.lua, hard-coded:
//   authenticate: gooduser -> STOP_AND_RETURN true, baduser -> false, else IGNORE
//   authorize:    PUBLISH to $SYS/# by a non-superuser -> STOP_AND_RETURN false
//   publish:      demo/in -> CONTINUE, topic demo/out + header x-exhookd;
//                 demo/drop -> STOP_AND_RETURN, header allow_publish=false
//   anything else: EmptySuccess / IGNORE.
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

namespace v3 = emqx::exhook::v3;
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
  ServerUnaryReactor *Rpc(CallbackServerContext *ctx, const v3::Req *,         \
                          v3::EmptySuccess *) override {                       \
    return done(ctx);                                                          \
  }

class Provider final : public v3::HookProvider::CallbackService {
  ServerUnaryReactor *OnProviderLoaded(CallbackServerContext *ctx,
                                       const v3::ProviderLoadedRequest *,
                                       v3::LoadedResponse *reply) override {
    for (const char *name : {"client.connected", "client.disconnected",
                             "client.authenticate", "client.authorize"})
      reply->add_hooks()->set_name(name);
    v3::HookSpec *pub = reply->add_hooks();
    pub->set_name("message.publish");
    pub->add_topics("demo/#");
    return done(ctx);
  }

  ServerUnaryReactor *OnClientAuthenticate(CallbackServerContext *ctx,
                                           const v3::ClientAuthenticateRequest *req,
                                           v3::ValuedResponse *reply) override {
    const std::string &user = req->clientinfo().username();
    if (user == "gooduser" || user == "baduser") {
      reply->set_type(v3::ValuedResponse::STOP_AND_RETURN);
      reply->set_bool_result(user == "gooduser");
    } else {
      reply->set_type(v3::ValuedResponse::IGNORE);
    }
    return done(ctx);
  }

  ServerUnaryReactor *OnClientAuthorize(CallbackServerContext *ctx,
                                        const v3::ClientAuthorizeRequest *req,
                                        v3::ValuedResponse *reply) override {
    if (req->type() == v3::ClientAuthorizeRequest::PUBLISH &&
        !req->clientinfo().is_superuser() && matches_sys(req->topic())) {
      reply->set_type(v3::ValuedResponse::STOP_AND_RETURN);
      reply->set_bool_result(false);
    } else {
      reply->set_type(v3::ValuedResponse::IGNORE);
    }
    return done(ctx);
  }

  ServerUnaryReactor *OnMessagePublish(CallbackServerContext *ctx,
                                       const v3::MessagePublishRequest *req,
                                       v3::ValuedResponse *reply) override {
    const std::string &topic = req->message().topic();
    if (topic == "demo/in") {
      reply->set_type(v3::ValuedResponse::CONTINUE);
      v3::Message *m = reply->mutable_message();
      *m = req->message();
      m->set_topic("demo/out");
      (*m->mutable_headers())["x-exhookd"] = "rewritten";
    } else if (topic == "demo/drop") {
      reply->set_type(v3::ValuedResponse::STOP_AND_RETURN);
      v3::Message *m = reply->mutable_message();
      *m = req->message();
      (*m->mutable_headers())["allow_publish"] = "false";
    } else {
      reply->set_type(v3::ValuedResponse::IGNORE);
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
  EMPTY(OnSessionTakenover, SessionTakenoverRequest)
  EMPTY(OnSessionTerminated, SessionTerminatedRequest)
  EMPTY(OnMessageDelivered, MessageDeliveredRequest)
  EMPTY(OnMessageDropped, MessageDroppedRequest)
  EMPTY(OnMessageAcked, MessageAckedRequest)
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

  Provider provider;
  int port = 0;
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a busy port must be an error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(argv[1], grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&provider);
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
