#include "netlayer/sim/trace.h"

#include <cinttypes>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "netlayer/core/assert.h"

namespace netlayer::sim {
namespace {

std::string JsonEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace

const char* TraceKindName(TraceKind kind) {
  switch (kind) {
    case TraceKind::kWorld:
      return "world";
    case TraceKind::kHost:
      return "host";
    case TraceKind::kTimer:
      return "timer";
    case TraceKind::kListen:
      return "listen";
    case TraceKind::kConnect:
      return "connect";
    case TraceKind::kAccept:
      return "accept";
    case TraceKind::kSend:
      return "send";
    case TraceKind::kDeliver:
      return "deliver";
    case TraceKind::kClose:
      return "close";
    case TraceKind::kReset:
      return "reset";
    case TraceKind::kFault:
      return "fault";
    case TraceKind::kApp:
      return "app";
  }
  return "unknown";
}

std::string TraceEvent::CanonicalLine() const {
  return absl::StrCat(seq, " ", absl::ToInt64Nanoseconds(time), " ", host, " ", TraceKindName(kind),
                      " ", detail);
}

std::string TraceEvent::HumanLine() const {
  const int64_t ns = absl::ToInt64Nanoseconds(time);
  return absl::StrFormat("[%6d.%09ds] %-10s %-8s %s", ns / 1000000000, ns % 1000000000, host,
                         TraceKindName(kind), detail);
}

std::string TraceEvent::JsonLine() const {
  return absl::StrCat("{\"seq\":", seq, ",\"t_ns\":", absl::ToInt64Nanoseconds(time),
                      ",\"host\":\"", JsonEscape(host), "\",\"kind\":\"", TraceKindName(kind),
                      "\",\"detail\":\"", JsonEscape(detail), "\"",
                      conn != 0 ? absl::StrCat(",\"conn\":", conn) : "",
                      peer.empty() ? "" : absl::StrCat(",\"peer\":\"", JsonEscape(peer), "\""),
                      bytes != 0 ? absl::StrCat(",\"bytes\":", bytes) : "", "}");
}

uint64_t Fnv1a64(uint64_t hash, std::string_view bytes) {
  for (char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= Trace::kFnvPrime;
  }
  return hash;
}

Trace::Trace(size_t capacity) : capacity_(capacity) {
  NETLAYER_ASSERT(capacity_ >= 1, "a trace keeps at least one event");
}

void Trace::Add(absl::Duration time, std::string_view host, TraceKind kind, std::string detail) {
  TraceEvent event;
  event.time = time;
  event.host = std::string(host);
  event.kind = kind;
  event.detail = std::move(detail);
  Add(std::move(event));
}

void Trace::Add(TraceEvent event) {
  event.seq = next_seq_++;
  hash_ = Fnv1a64(hash_, event.CanonicalLine());
  hash_ = Fnv1a64(hash_, "\n");
  if (sink_) sink_(event);
  if (ring_.size() == capacity_) ring_.pop_front();
  ring_.push_back(std::move(event));
}

std::string Trace::HashHex() const { return absl::StrFormat("%016x", hash_); }

std::vector<TraceEvent> Trace::Recent() const { return {ring_.begin(), ring_.end()}; }

std::vector<TraceEvent> Trace::Last(size_t n) const {
  const size_t take = n < ring_.size() ? n : ring_.size();
  return {ring_.end() - static_cast<std::ptrdiff_t>(take), ring_.end()};
}

}  // namespace netlayer::sim
