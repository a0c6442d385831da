#include "netlayer/rpc/call_table.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/probe.h"
#include "wire.h"

namespace netlayer::rpc {

const char* LinkName(CallTable::Link link) {
  switch (link) {
    case CallTable::Link::kWaiting:
      return "waiting";
    case CallTable::Link::kFlushing:
      return "flushing";
    case CallTable::Link::kOpen:
      return "open";
    case CallTable::Link::kClosed:
      return "closed";
  }
  return "?";
}

CallTable::CallTable(size_t max_pending) : max_pending_(max_pending) {
  NETLAYER_ASSERT(max_pending_ > 0, "the call table's bound is positive");
}

absl::Status CallTable::Admit(std::string_view method) const {
  if (method.empty() || method.size() > kMaxMethodLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("rpc: a method name is 1..", kMaxMethodLength, " bytes, got ", method.size()));
  }
  if (link_ == Link::kClosed) return closed_status_;
  if (pending_.size() + unsent_one_way_ >= max_pending_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "rpc client: ", max_pending_, " calls are already pending (max_pending_calls)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<CallTable::Started> CallTable::StartCall(std::string_view method,
                                                        std::string_view payload,
                                                        absl::Time deadline, absl::Time now,
                                                        CallCallback& done) {
  if (absl::Status s = Admit(method); !s.ok()) return s;
  if (deadline <= now) {
    return absl::DeadlineExceededError(
        absl::StrCat("rpc call \"", internal::AV(method), "\": deadline already passed"));
  }
  const uint64_t id = next_id_++;
  auto [it, inserted] = pending_.try_emplace(id);
  NETLAYER_ASSERT(inserted, "call ids are never reused");
  PendingCall& call = it->second;
  call.method = std::string(method);
  call.done = std::move(done);
  call.started = now;
  Started started{id, link_ == Link::kOpen};
  if (started.send_now) {
    // Registered before it is sent, so the reply always finds it.
    call.generation = generation_;
  } else {
    unsent_.push_back(
        OutgoingMessage{MessageKind::kCall, id, std::string(method), std::string(payload)});
  }
  CheckInvariants();
  return started;
}

void CallTable::SetTimer(uint64_t id, TimerId timer) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  NETLAYER_ASSERT(!it->second.timer.has_value(), "a call has one deadline timer");
  it->second.timer = timer;
}

absl::StatusOr<bool> CallTable::StartOneWay(std::string_view method, std::string_view payload) {
  if (absl::Status s = Admit(method); !s.ok()) {
    // The bound is for what waits: an open link sends at once, whatever is pending.
    if (!(link_ == Link::kOpen && s.code() == absl::StatusCode::kResourceExhausted)) return s;
  }
  if (link_ == Link::kOpen) return true;
  unsent_.push_back(
      OutgoingMessage{MessageKind::kOneWay, 0, std::string(method), std::string(payload)});
  ++unsent_one_way_;
  CheckInvariants();
  return false;
}

uint64_t CallTable::NextId() { return next_id_++; }

void CallTable::BeginFlush(uint64_t generation) {
  NETLAYER_ASSERT(link_ == Link::kWaiting, "a flush starts from kWaiting");
  NETLAYER_ASSERT(generation > generation_, "connection generations increase");
  generation_ = generation;
  link_ = Link::kFlushing;
}

std::vector<OutgoingMessage> CallTable::TakeUnsent(uint64_t generation) {
  std::vector<OutgoingMessage> out;
  if (link_ != Link::kFlushing || generation != generation_) return out;
  while (!unsent_.empty()) {
    OutgoingMessage m = std::move(unsent_.front());
    unsent_.pop_front();
    if (m.kind == MessageKind::kOneWay) {
      NETLAYER_ASSERT(unsent_one_way_ > 0, "one-way accounting");
      --unsent_one_way_;
    } else {
      auto it = pending_.find(m.id);
      if (it == pending_.end()) continue;  // expired while waiting
      NETLAYER_ASSERT(it->second.generation == 0, "an unsent call has no generation");
      it->second.generation = generation_;
    }
    out.push_back(std::move(m));
  }
  if (out.empty()) link_ = Link::kOpen;
  CheckInvariants();
  return out;
}

CallTable::Completion CallTable::Finish(std::map<uint64_t, PendingCall>::iterator it,
                                        CallResult result) {
  Completion c{it->first,         std::move(it->second.done),   it->second.timer,
               std::move(result), std::move(it->second.method), it->second.started};
  pending_.erase(it);
  return c;
}

std::optional<CallTable::Completion> CallTable::SendFailed(uint64_t id,
                                                           const absl::Status& status) {
  NETLAYER_ASSERT(!status.ok(), "a failed send has an error");
  auto it = pending_.find(id);
  if (it == pending_.end()) return std::nullopt;
  return Finish(it, status);
}

std::optional<CallTable::Completion> CallTable::OnReply(uint64_t generation, uint64_t id,
                                                        CallResult result) {
  auto it = pending_.find(id);
  // A reply to a call that expired, or was never sent on this connection.
  if (it == pending_.end() || it->second.generation == 0 || it->second.generation != generation) {
    NETLAYER_REACHABLE("rpc.client.reply-to-finished-call");
    return std::nullopt;
  }
  return Finish(it, std::move(result));
}

std::optional<CallTable::Completion> CallTable::Expire(uint64_t id,
                                                       const absl::Status& last_error) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return std::nullopt;
  std::string message =
      absl::StrCat("rpc call \"", it->second.method, "\" (id ", id, "): deadline exceeded");
  if (it->second.generation == 0) {
    absl::StrAppend(&message, " while waiting for a connection");
    if (!last_error.ok()) absl::StrAppend(&message, " (last error: ", last_error.message(), ")");
  }
  it->second.timer.reset();  // the expiring timer itself, or the caller's own wait
  return Finish(it, absl::DeadlineExceededError(message));
}

CallTable::Completions CallTable::ConnectionLost(uint64_t generation, const absl::Status& status,
                                                 bool planted_keep_calls) {
  NETLAYER_ASSERT(!status.ok(), "a lost connection has a reason");
  Completions out;
  if (link_ == Link::kClosed || generation != generation_) return out;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.generation == generation && !planted_keep_calls) {
      out.push_back(Finish(it++, status));
    } else {
      ++it;
    }
  }
  NETLAYER_SOMETIMES(!out.empty(), "rpc.client.calls-failed-at-close");
  link_ = Link::kWaiting;
  CheckInvariants();
  return out;
}

CallTable::Completions CallTable::Close(absl::Status status) {
  NETLAYER_ASSERT(!status.ok(), "a closed table fails calls with an error");
  Completions out;
  if (link_ == Link::kClosed) return out;
  link_ = Link::kClosed;
  closed_status_ = std::move(status);
  out.reserve(pending_.size());
  while (!pending_.empty()) out.push_back(Finish(pending_.begin(), closed_status_));
  unsent_.clear();
  unsent_one_way_ = 0;
  CheckInvariants();
  return out;
}

void CallTable::CheckInvariants() const {
  NETLAYER_ASSERT(unsent_one_way_ <= unsent_.size(), "one-way accounting");
  NETLAYER_ASSERT(pending_.size() + unsent_one_way_ <= max_pending_, "the call bound holds");
  NETLAYER_ASSERT(link_ != Link::kOpen || unsent_.empty(), "an open link has nothing queued");
  NETLAYER_ASSERT(link_ != Link::kClosed || (pending_.empty() && unsent_.empty()),
                  "a closed table holds nothing");
  NETLAYER_ASSERT(pending_.empty() || pending_.rbegin()->first < next_id_, "ids increase");
}

}  // namespace netlayer::rpc
