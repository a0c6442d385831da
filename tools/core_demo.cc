// netlayer-core-demo: shows the core state machines with no I/O at all: the seed's connect
// schedule for one set of options, and a connection's handler queueing and flush-on-close.
#include <cstdio>
#include <memory>
#include <string>

#include "netlayer/core/connect_schedule.h"
#include "netlayer/core/connection_state.h"

namespace {
using netlayer::Address;
using netlayer::ConnectSchedule;

class PrintingHandler : public netlayer::ConnectionHandler {
 public:
  void InputData(netlayer::Connection&, std::string_view data) override {
    std::printf("  handler: input '%.*s'\n", static_cast<int>(data.size()), data.data());
  }
  void ConnectionClosed(netlayer::Connection&, const netlayer::CloseReason& reason) override {
    std::printf("  handler: closed (%s)\n", reason.ToString().c_str());
  }
};
}  // namespace

int main() {
  netlayer::ConnectOptions options;
  options.min_delay = absl::Seconds(1);
  options.max_delay = absl::Seconds(8);
  options.delay_backoff = 2;
  options.max_attempts = 5;
  auto schedule = ConnectSchedule::Create(
      {*Address::Parse("zeo1:8100"), *Address::Parse("zeo2:8100")}, options);
  if (!schedule.ok()) {
    std::fprintf(stderr, "%s\n", schedule.status().ToString().c_str());
    return 1;
  }
  std::printf("connect schedule (min 1s, max 8s, backoff 2, 5 rounds), every attempt refused:\n");
  const absl::Time start = absl::UnixEpoch();
  absl::Time now = start;
  ConnectSchedule::Action action = schedule->Start(now);
  while (action.kind != ConnectSchedule::Action::Kind::kFailed) {
    if (action.kind == ConnectSchedule::Action::Kind::kTryAddress) {
      std::printf("  t=%5.1fs round %d: try %s\n", absl::ToDoubleSeconds(now - start),
                  schedule->round(), schedule->addresses()[action.address_index].ToString().c_str());
      action = schedule->OnAttemptFailed(now, absl::UnavailableError("connection refused"));
    } else {
      now = action.wake_at;
      action = schedule->OnWakeUp(now);
    }
  }
  std::printf("  -> %s\n\n", action.status.ToString().c_str());

  std::printf("connection state: input before a handler is queued, then delivered in order:\n");
  netlayer::ConnectionState state;
  struct NoConnection : netlayer::Connection {
    bool IsOpen() const override { return true; }
    std::shared_ptr<netlayer::ConnectionHandler> SetHandler(
        std::shared_ptr<netlayer::ConnectionHandler>) override {
      return nullptr;
    }
    absl::Status WriteV(absl::Span<const std::string_view>) override { return absl::OkStatus(); }
    void Close() override {}
    void Abort() override {}
    size_t QueuedOutputBytes() const override { return 0; }
    Address local_address() const override { return Address::HostName("a", 1); }
    Address peer_address() const override { return Address::HostName("b", 1); }
  } connection;
  netlayer::NoLock lock;
  netlayer::ReceiveInput(lock, state, connection, "hello ");
  netlayer::ReceiveInput(lock, state, connection, "world");
  state.OnRemoteClosed(netlayer::CloseReason(netlayer::CloseReason::Kind::kPeerClosed, ""));
  std::printf("  queued %zu bytes and a close; now setting the handler\n",
              state.pending_input_bytes());
  state.SetHandler(std::make_shared<PrintingHandler>());
  netlayer::DeliverEvents(lock, state, connection);
  return 0;
}
