// gRPC calls per second: the synchronous C++ API as its examples use it. The server has the
// default ServerBuilder settings (its own polling threads); the client shares one channel and
// one stub among its calling threads; every call carries a deadline, as netlayer's do.
#include <chrono>
#include <memory>
#include <string>

#include "call_loop.h"
#include "echo.grpc.pb.h"
#include "grpc_figures.h"
#include "grpcpp/grpcpp.h"

namespace netlayer::bench {
namespace {

namespace pb = ::netlayer::bench::grpc_echo;

constexpr auto kSetupTimeout = std::chrono::seconds(10);
constexpr auto kCallTimeout = std::chrono::seconds(10);

class EchoService final : public pb::Echo::Service {
 public:
  grpc::Status Echo(grpc::ServerContext* /*context*/, const pb::EchoMessage* request,
                    pb::EchoMessage* reply) override {
    reply->set_payload(request->payload());
    return grpc::Status::OK;
  }
};

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      "grpc: " + status.error_message());
}

class GrpcCalls : public Runner {
 public:
  GrpcCalls(int threads, size_t payload_size) : threads_(threads), payload_size_(payload_size) {}

  absl::Status Start() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port == 0) {
      return absl::UnavailableError("grpc: the server did not start on 127.0.0.1");
    }
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
    if (!channel_->WaitForConnected(std::chrono::system_clock::now() + kSetupTimeout)) {
      return absl::DeadlineExceededError("grpc: the channel did not connect");
    }
    stub_ = pb::Echo::NewStub(channel_);
    return absl::OkStatus();
  }

  absl::StatusOr<double> Measure(Seconds duration) override {
    return RunCallLoop(
        threads_, payload_size_, duration,
        [this](const std::string& payload) {
          grpc::ClientContext context;
          context.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
          pb::EchoMessage request;
          request.set_payload(payload);
          pb::EchoMessage reply;
          grpc::Status status = stub_->Echo(&context, request, &reply);
          if (!status.ok()) return FromGrpc(status);
          if (reply.payload() != payload) return absl::DataLossError("grpc: wrong reply");
          return absl::OkStatus();
        },
        latency_);
  }

  const LatencyHistogram* latency() const override { return &latency_; }

  absl::Status Stop() override {
    stub_.reset();
    channel_.reset();
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + kSetupTimeout);
      server_->Wait();
      server_.reset();
    }
    return absl::OkStatus();
  }

 private:
  int threads_;
  size_t payload_size_;
  EchoService service_;  // outlives server_ (declared first)
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Echo::Stub> stub_;
  LatencyHistogram latency_;
};

}  // namespace

std::unique_ptr<Runner> MakeGrpcCalls(int threads, size_t payload_size) {
  return std::make_unique<GrpcCalls>(threads, payload_size);
}

}  // namespace netlayer::bench
