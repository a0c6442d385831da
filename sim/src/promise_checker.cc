// PromiseChecker: see promise_checker.h.
#include "netlayer/sim/promise_checker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/close_reason.h"

namespace netlayer::sim {

namespace {
// How far ahead a mismatching chunk is searched for in the expected bytes, to tell skipped
// (dropped) bytes from duplicated or reordered ones in a report.
constexpr size_t kSkipSearch = 64;
}  // namespace

// Sits between the backend's delivery loop and the application's handler: every call is
// checked, then passed on unchanged.
class PromiseChecker::CheckingHandler final : public ConnectionHandler {
 public:
  CheckingHandler(std::shared_ptr<PromiseChecker> checker, int side,
                  std::shared_ptr<ConnectionHandler> inner)
      : checker_(std::move(checker)), side_(side), inner_(std::move(inner)) {}

  void InputData(Connection& connection, std::string_view data) override {
    checker_->BeforeInput(side_, data);
    Call([&] { inner_->InputData(connection, data); });
  }
  void ConnectionClosed(Connection& connection, const CloseReason& reason) override {
    checker_->BeforeClose(side_, reason);
    Call([&] { inner_->ConnectionClosed(connection, reason); });
  }
  const std::shared_ptr<ConnectionHandler>& inner() const { return inner_; }

 private:
  template <typename F>
  void Call(F&& f) {
    End& end = checker_->end_[side_];
    const bool was = std::exchange(end.in_call, true);
    f();
    end.in_call = was;
  }

  std::shared_ptr<PromiseChecker> checker_;
  int side_;
  std::shared_ptr<ConnectionHandler> inner_;
};

PromiseChecker::PromiseChecker(uint64_t stream_id, std::array<std::string, 2> names, Report report)
    : stream_id_(stream_id), names_(std::move(names)), report_(std::move(report)) {}

std::string PromiseChecker::Name(int side) const {
  return absl::StrCat("conn#", stream_id_, " (", names_[side], " end, ",
                      side == 0 ? "connected" : "accepted", ")");
}

void PromiseChecker::Fail(int side, int promise, std::string what) {
  if (!status_.ok()) return;
  status_ =
      absl::InternalError(absl::StrCat("promise ", promise, " broken on ", Name(side), ": ", what));
  if (report_) report_(side, status_);
}

void PromiseChecker::Drop(Direction& d) {
  d.tracking = false;
  d.kept.clear();
  d.kept.shrink_to_fit();
  d.kept_offset = 0;
}

void PromiseChecker::OnWrite(int side, absl::Span<const std::string_view> pieces,
                             const absl::Status& status, bool was_open) {
  NETLAYER_ASSERT(side == 0 || side == 1, "a stream has two ends");
  if (!status.ok()) return;
  size_t total = 0;
  for (std::string_view p : pieces) total += p.size();
  if (!was_open || end_[side].closed_locally) {
    Fail(side, 5,
         absl::StrCat("a Write of ", total, " bytes was accepted on an end that is ",
                      end_[side].closed_locally ? "closed locally" : "not open"));
  }
  Direction& d = dir_[side];
  d.accepted += total;
  if (!d.tracking || d.broken) return;
  // Compact when the delivered front is the larger part.
  if (d.kept_offset > 0 && d.kept_offset >= d.kept.size() / 2) {
    d.kept.erase(0, d.kept_offset);
    d.kept_offset = 0;
  }
  for (std::string_view p : pieces) d.kept.append(p);
}

void PromiseChecker::OnReceived(int side, size_t n) {
  NETLAYER_ASSERT(side == 0 || side == 1, "a stream has two ends");
  dir_[1 - side].received += n;
}

void PromiseChecker::OnBroken() {
  for (Direction& d : dir_) {
    if (d.broken) continue;
    d.broken = true;
    // Only what the reader's state already holds can still be delivered.
    if (d.tracking && d.received >= d.delivered) {
      const size_t keep = static_cast<size_t>(d.received - d.delivered);
      if (keep < d.kept.size() - d.kept_offset) d.kept.resize(d.kept_offset + keep);
    }
  }
}

void PromiseChecker::OnWriterDied(int side, uint64_t reaches) {
  NETLAYER_ASSERT(side == 0 || side == 1, "a stream has two ends");
  Direction& d = dir_[side];
  NETLAYER_ASSERT(reaches >= d.received, "bytes already received did reach the reader");
  if (reaches >= d.accepted) return;
  if (d.tracking && !d.broken && reaches >= d.delivered) {
    const size_t keep = static_cast<size_t>(reaches - d.delivered);
    if (keep < d.kept.size() - d.kept_offset) d.kept.resize(d.kept_offset + keep);
  }
  d.accepted = reaches;
}

void PromiseChecker::OnLocalClose(int side) {
  NETLAYER_ASSERT(side == 0 || side == 1, "a stream has two ends");
  end_[side].closed_locally = true;
  // Its undelivered input is discarded: the direction into it is checked no more.
  Drop(dir_[1 - side]);
}

std::shared_ptr<ConnectionHandler> PromiseChecker::Wrap(
    int side, std::shared_ptr<ConnectionHandler> handler) {
  NETLAYER_ASSERT(side == 0 || side == 1, "a stream has two ends");
  handler = Unwrap(std::move(handler));
  if (handler == nullptr) return nullptr;
  return std::make_shared<CheckingHandler>(shared_from_this(), side, std::move(handler));
}

std::shared_ptr<ConnectionHandler> PromiseChecker::Unwrap(
    std::shared_ptr<ConnectionHandler> handler) {
  if (auto* checking = dynamic_cast<CheckingHandler*>(handler.get())) return checking->inner();
  return handler;
}

void PromiseChecker::BeginSetHandler(int side) { ++end_[side].set_handler_depth; }
void PromiseChecker::EndSetHandler(int side) { --end_[side].set_handler_depth; }

bool PromiseChecker::CheckCall(int side, const char* what) {
  const End& end = end_[side];
  if (end.in_call) {
    Fail(side, 2, absl::StrCat(what, " entered while a handler call on this end is still running"));
    return false;
  }
  if (end.closed_locally) {
    Fail(side, 4, absl::StrCat(what, " delivered after a local Close() or Abort()"));
    return false;
  }
  return true;
}

void PromiseChecker::BeforeInput(int side, std::string_view data) {
  if (!status_.ok()) return;
  if (!CheckCall(side, "InputData")) return;
  if (end_[side].close_delivered) {
    Fail(side, 4, "InputData delivered after ConnectionClosed");
    return;
  }
  Direction& d = dir_[1 - side];
  const uint64_t at = d.delivered;
  d.delivered += data.size();
  if (!d.tracking) return;
  const std::string_view expected =
      std::string_view(d.kept).substr(d.kept_offset);  // accepted [at, accepted)
  const size_t overlap = std::min(expected.size(), data.size());
  size_t i = 0;
  while (i < overlap && data[i] == expected[i]) ++i;
  if (i == data.size()) {
    d.kept_offset += data.size();
    return;
  }
  const int queued = end_[side].set_handler_depth > 0 ? 1 : 0;
  const std::string range = absl::StrCat("bytes ", at, "..", at + data.size(), " of the stream");
  if (i == expected.size()) {
    Fail(side, queued ? 1 : 6,
         absl::StrCat("InputData got ", range, " but the peer's writes accepted only ", d.accepted,
                      d.broken ? " (and the stream broke after " : "",
                      d.broken ? absl::StrCat(at + expected.size(), " were received)") : "",
                      ": bytes duplicated or invented"));
    return;
  }
  // Skipped bytes: the rest of the chunk is found a little further on in the expected bytes.
  const std::string_view rest = data.substr(i);
  for (size_t k = 1; k <= kSkipSearch && i + k < expected.size(); ++k) {
    const std::string_view later = expected.substr(i + k);
    const size_t m = std::min(later.size(), rest.size());
    if (later.substr(0, m) == rest.substr(0, m)) {
      Fail(side, queued ? 1 : 3,
           absl::StrCat(
               "InputData got ", range, " with ", k, " byte(s) missing at byte ", at + i,
               queued ? " (input queued before the handler was set)" : ": written bytes dropped"));
      return;
    }
  }
  Fail(side, queued ? 1 : 6,
       absl::StrCat("InputData got ", range, " that differ from what the peer wrote from byte ",
                    at + i, queued ? " (input queued before the handler was set)" : "",
                    ": bytes duplicated or reordered"));
}

void PromiseChecker::BeforeClose(int side, const CloseReason& reason) {
  if (!status_.ok()) return;
  if (!CheckCall(side, "ConnectionClosed")) return;
  End& end = end_[side];
  if (end.close_delivered) {
    Fail(side, 4, absl::StrCat("ConnectionClosed (", reason.ToString(), ") delivered twice"));
    return;
  }
  end.close_delivered = true;
  Direction& d = dir_[1 - side];
  if (d.tracking && d.delivered < d.received) {
    Fail(side, 1,
         absl::StrCat("ConnectionClosed (", reason.ToString(), ") delivered with ",
                      d.received - d.delivered,
                      " received byte(s) not yet delivered: input that arrived before the close "
                      "must be delivered before it"));
    return;
  }
  if (d.tracking && reason.kind() == CloseReason::Kind::kPeerClosed && d.delivered < d.accepted) {
    Fail(side, 3,
         absl::StrCat("the peer's graceful close ended the stream after ", d.delivered,
                      " bytes, but its writes accepted ", d.accepted,
                      ": output written before Close() was not delivered"));
    return;
  }
  Drop(d);  // no input follows a close
}

}  // namespace netlayer::sim
