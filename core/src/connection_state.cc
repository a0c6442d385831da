#include "netlayer/core/connection_state.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"

namespace netlayer {
namespace {
// Queued input events are merged up to this size, as TCP may merge them anyway (promise 6).
constexpr size_t kMergeInputUpTo = size_t{64} << 10;
// Small writes are appended to the last unsent chunk up to this size: fewer allocations and
// fewer pieces per writev.
constexpr size_t kCoalesceOutputUpTo = size_t{64} << 10;
}  // namespace

ConnectionState::ConnectionState(ConnectionLimits limits) : limits_(limits) {
  NETLAYER_ASSERT(limits_.max_output_bytes > 0, "max_output_bytes must be positive");
  NETLAYER_ASSERT(limits_.max_pending_input_bytes > 0, "max_pending_input_bytes must be positive");
}

std::shared_ptr<ConnectionHandler> ConnectionState::SetHandler(
    std::shared_ptr<ConnectionHandler> handler) {
  std::swap(handler_, handler);
  return handler;
}

absl::Status ConnectionState::Write(absl::Span<const std::string_view> pieces) {
  if (phase_ != Phase::kOpen) {
    return absl::FailedPreconditionError(phase_ == Phase::kClosing
                                             ? "write on a connection that is closing"
                                             : "write on a closed connection");
  }
  size_t total = 0;
  for (std::string_view piece : pieces) total += piece.size();
  if (total == 0) return absl::OkStatus();
  if (total > limits_.max_output_bytes - output_bytes_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("output queue full: ", output_bytes_, " bytes queued, writing ", total,
                     " more would pass the limit of ", limits_.max_output_bytes));
  }
  // Append to the last chunk only if the sender holds no view into it.
  const bool can_append = output_.size() > pinned_chunks_ && !output_.empty() &&
                          output_.back().size() + total <= kCoalesceOutputUpTo;
  std::string* chunk;
  if (can_append) {
    chunk = &output_.back();
  } else {
    chunk = &output_.emplace_back();
    chunk->reserve(total);
  }
  for (std::string_view piece : pieces) chunk->append(piece);
  output_bytes_ += total;
  return absl::OkStatus();
}

bool ConnectionState::Close() {
  if (closed_locally_) return false;
  closed_locally_ = true;
  // Whatever was not yet delivered is dropped, even a remote close already seen but still
  // queued: after a local Close() the handler hears nothing more (promise 4).
  events_.clear();
  pending_input_bytes_ = 0;
  if (phase_ == Phase::kClosed) return false;  // the stream already ended; nothing to shut down
  if (output_bytes_ == 0) {
    phase_ = Phase::kClosed;
    return true;
  }
  phase_ = Phase::kClosing;
  return false;
}

std::shared_ptr<ConnectionHandler> ConnectionState::OnInput(std::string_view data) {
  if (phase_ != Phase::kOpen || data.empty()) return nullptr;
  if (handler_ != nullptr && events_.empty() && !delivering_) {
    delivering_ = true;
    return handler_;
  }
  if (!events_.empty() && events_.back().input &&
      events_.back().input->size() + data.size() <= kMergeInputUpTo) {
    events_.back().input->append(data);
  } else {
    events_.push_back(Event{std::string(data), std::nullopt});
  }
  pending_input_bytes_ += data.size();
  return nullptr;
}

bool ConnectionState::OnRemoteClosed(CloseReason reason) {
  if (phase_ == Phase::kClosed) return false;
  const bool notify = phase_ == Phase::kOpen;
  phase_ = Phase::kClosed;
  DiscardOutput();
  if (notify) {
    NETLAYER_ASSERT(!close_queued_, "a connection's close is notified once");
    close_queued_ = true;
    events_.push_back(Event{std::nullopt, std::move(reason)});
  }
  return true;
}

void ConnectionState::DiscardOutput() {
  output_bytes_ = 0;
  output_offset_ = 0;
  // Chunks the sender is still reading from are freed by its ConsumeOutput call.
  if (pinned_chunks_ == 0) output_.clear();
}

size_t ConnectionState::PeekOutput(absl::Span<std::string_view> out) {
  if (phase_ == Phase::kClosed || output_bytes_ == 0) return 0;
  size_t filled = 0;
  for (size_t i = 0; i < output_.size() && filled < out.size(); ++i) {
    std::string_view chunk = output_[i];
    if (i == 0) chunk.remove_prefix(output_offset_);
    out[filled++] = chunk;
  }
  pinned_chunks_ = filled;
  return filled;
}

bool ConnectionState::ConsumeOutput(size_t n) {
  pinned_chunks_ = 0;
  if (phase_ == Phase::kClosed) {
    // Closed by the peer or an error while the sender was busy: drop what is left.
    output_.clear();
    return false;
  }
  NETLAYER_ASSERT(n <= output_bytes_, "cannot consume more output than is queued");
  output_bytes_ -= n;
  while (n > 0) {
    NETLAYER_ASSERT(!output_.empty(), "output accounting matches the queue");
    const size_t left_in_front = output_.front().size() - output_offset_;
    if (n < left_in_front) {
      output_offset_ += n;
      n = 0;
    } else {
      n -= left_in_front;
      output_.pop_front();
      output_offset_ = 0;
    }
  }
  if (phase_ == Phase::kClosing && output_bytes_ == 0) {
    phase_ = Phase::kClosed;
    return true;
  }
  return false;
}

bool ConnectionState::WantRead() const {
  return phase_ != Phase::kClosed && pending_input_bytes_ < limits_.max_pending_input_bytes;
}

bool ConnectionState::ClaimDelivery() {
  if (delivering_ || !HasDeliverable()) return false;
  delivering_ = true;
  return true;
}

bool ConnectionState::NextDelivery(Delivery& out) {
  NETLAYER_ASSERT(delivering_, "NextDelivery is for the claimed deliverer");
  if (!HasDeliverable()) {
    delivering_ = false;
    return false;
  }
  Event& event = events_.front();
  out.handler = handler_;
  out.close = std::move(event.close);
  if (event.input) {
    NETLAYER_ASSERT(pending_input_bytes_ >= event.input->size(), "input accounting");
    pending_input_bytes_ -= event.input->size();
    out.input = std::move(*event.input);
  } else {
    out.input.clear();
  }
  events_.pop_front();
  return true;
}

}  // namespace netlayer
