// LoopConnection: an in-memory Connection for the fuzz targets, so that a target can keep its
// server, sessions and TLS pairs across inputs and feed each input straight to a handler: no
// world to build, no network to run, no virtual time to settle (issue 29: the session and TLS
// targets built a whole simulated connection per input and ran at about 475 and 88 inputs/s).
//
// What the test side does: Deliver(bytes) hands bytes to the handler as a backend would (into
// the handler's InputBuffer when it offers one and `in_place` is set, as posix reads), and
// DeliverClose(reason) ends the stream. What the handler's side writes goes to output (taken
// with TakeOutput); nothing is ever queued, so QueuedOutputBytes() is 0. It keeps the promises
// of connection.h that its users rely on: no delivery after a local Close() or after the close,
// ConnectionClosed once, a handler never re-entered (Deliver is never called from a handler).
//
// Thread rules: one thread (the fuzz target's). Not a backend: the simulator stays the one fake
// network of the project (tests/support/sim_net.h); this only carries bytes the fuzzer chose.
#pragma once

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "netlayer/core/connection.h"

namespace netlayer::fuzz {

class LoopConnection final : public Connection {
 public:
  explicit LoopConnection(size_t max_output_bytes = size_t{1} << 20)
      : max_output_bytes_(max_output_bytes) {}

  bool IsOpen() const override { return open_; }
  // Installing a handler delivers what waited (unless called from inside a delivery: the
  // delivery loop goes on with the new handler), as a backend does.
  std::shared_ptr<ConnectionHandler> SetHandler(
      std::shared_ptr<ConnectionHandler> handler) override {
    std::shared_ptr<ConnectionHandler> old = std::exchange(handler_, std::move(handler));
    if (handler_ != nullptr && !delivering_) Drain();
    return old;
  }
  absl::Status WriteV(absl::Span<const std::string_view> pieces) override {
    if (!open_) return absl::FailedPreconditionError("write on a closed loop connection");
    size_t total = 0;
    for (std::string_view p : pieces) total += p.size();
    if (output_.size() + total > max_output_bytes_) {
      return absl::ResourceExhaustedError("loop connection output full");
    }
    for (std::string_view p : pieces) output_.append(p);
    return absl::OkStatus();
  }
  void Close() override {
    open_ = false;
    pending_.clear();
  }
  void Abort() override { Close(); }
  size_t QueuedOutputBytes() const override { return 0; }
  Address local_address() const override { return Address::HostName("fuzz-local", 1); }
  Address peer_address() const override { return Address::HostName("fuzz-peer", 2); }

  // The peer sent `data` (one read's worth): delivered now if a handler is set (into its
  // InputBuffer when `in_place` and it offers one, as posix reads), else when one is set.
  void Deliver(std::string_view data, bool in_place = false) {
    if (!open_ || data.empty()) return;
    pending_.push_back(Chunk{std::string(data), in_place});
    if (!delivering_) Drain();
  }
  // The stream ends, after what is pending (once; nothing after a local Close()).
  void DeliverClose(const CloseReason& reason) {
    if (!open_ || close_) return;
    close_ = reason;
    if (!delivering_) Drain();
  }
  // What the handler's side wrote since the last call.
  std::string TakeOutput() { return std::exchange(output_, std::string()); }
  const std::string& output() const { return output_; }
  size_t pending_bytes() const {
    size_t n = 0;
    for (const Chunk& c : pending_) n += c.bytes.size();
    return n;
  }

 private:
  struct Chunk {
    std::string bytes;
    bool in_place;
  };
  void Drain() {
    delivering_ = true;
    while (open_ && handler_ != nullptr && !pending_.empty()) {
      std::shared_ptr<ConnectionHandler> h = handler_;  // kept for the call
      Chunk c = std::move(pending_.front());
      pending_.pop_front();
      if (c.in_place) {
        const absl::Span<char> span = h->InputBuffer(*this);
        if (!span.empty()) {
          const size_t n = std::min(span.size(), c.bytes.size());
          std::copy_n(c.bytes.data(), n, span.data());
          if (n < c.bytes.size()) {
            pending_.push_front(Chunk{c.bytes.substr(n), true});
          }
          h->InputData(*this, std::string_view(span.data(), n));
          continue;
        }
      }
      h->InputData(*this, c.bytes);
    }
    if (open_ && handler_ != nullptr && pending_.empty() && close_) {
      open_ = false;
      std::shared_ptr<ConnectionHandler> h = handler_;
      h->ConnectionClosed(*this, *close_);
    }
    delivering_ = false;
  }

  const size_t max_output_bytes_;
  bool open_ = true;
  bool delivering_ = false;
  std::shared_ptr<ConnectionHandler> handler_;
  // A deque: a paused handler may leave thousands of small chunks waiting, taken from the front
  // (a vector's erase(begin()) made that quadratic: 12% of the tls target's time).
  std::deque<Chunk> pending_;
  std::optional<CloseReason> close_;
  std::string output_;
};

}  // namespace netlayer::fuzz
