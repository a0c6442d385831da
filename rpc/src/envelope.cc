#include "netlayer/rpc/envelope.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "wire.h"

namespace netlayer::rpc {

const char* KindName(MessageKind kind) {
  switch (kind) {
    case MessageKind::kCall:
      return "call";
    case MessageKind::kOneWay:
      return "one-way";
    case MessageKind::kReply:
      return "reply";
    case MessageKind::kErrorReply:
      return "error reply";
    case MessageKind::kPing:
      return "ping";
    case MessageKind::kPong:
      return "pong";
  }
  return "unknown";
}

namespace {

bool HasMethod(MessageKind k) { return k == MessageKind::kCall || k == MessageKind::kOneWay; }

absl::Status Bad(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("rpc envelope: ", internal::AV(what)));
}

class Binary final : public EnvelopeCodec {
 public:
  std::string_view name() const override { return "netlayer-binary-1"; }

  std::string EncodeHead(const Envelope& e) const override {
    std::string head;
    head.reserve(1 + 8 + 2 + e.method.size() + 1);
    internal::PutU8(&head, static_cast<uint8_t>(e.kind));
    internal::PutU64(&head, e.id);
    if (HasMethod(e.kind)) {
      NETLAYER_ASSERT(!e.method.empty() && e.method.size() <= kMaxMethodLength,
                      "a call's method name is 1..1024 bytes");
      internal::PutU16(&head, static_cast<uint16_t>(e.method.size()));
      head += e.method;
    } else {
      NETLAYER_ASSERT(e.method.empty(), "only calls carry a method name");
    }
    if (e.kind == MessageKind::kErrorReply) {
      NETLAYER_ASSERT(e.code != absl::StatusCode::kOk, "an error reply carries an error code");
      internal::PutU8(&head, static_cast<uint8_t>(e.code));
    } else {
      NETLAYER_ASSERT(e.code == absl::StatusCode::kOk, "only error replies carry a code");
    }
    if (e.kind == MessageKind::kPing || e.kind == MessageKind::kPong) {
      NETLAYER_ASSERT(e.payload.empty(), "heartbeats carry no payload");
    }
    return head;
  }

  absl::StatusOr<Envelope> Decode(std::string_view message) const override {
    internal::Reader r(message);
    uint8_t kind = 0;
    Envelope e;
    if (!r.U8(&kind)) return Bad("empty message");
    if (kind < 1 || kind > 6) {
      return Bad(absl::StrCat(
          "unknown kind ", kind, " (first bytes \"",
          absl::CHexEscape(absl::string_view(message.data(), std::min<size_t>(message.size(), 16))),
          "\")"));
    }
    e.kind = static_cast<MessageKind>(kind);
    if (!r.U64(&e.id)) {
      return Bad(absl::StrCat(KindName(e.kind), " truncated in the message id (", message.size(),
                              " bytes)"));
    }
    if (HasMethod(e.kind)) {
      uint16_t len = 0;
      if (!r.U16(&len)) return Bad(absl::StrCat(KindName(e.kind), " truncated in the method"));
      if (len == 0) return Bad(absl::StrCat(KindName(e.kind), " with an empty method name"));
      if (len > kMaxMethodLength) {
        return Bad(absl::StrCat(KindName(e.kind), " with a method name of ", len,
                                " bytes (the limit is ", kMaxMethodLength, ")"));
      }
      if (!r.Bytes(len, &e.method)) {
        return Bad(absl::StrCat(KindName(e.kind), " truncated in the method name (", len,
                                " bytes announced, ", r.left(), " left)"));
      }
    }
    if (e.kind == MessageKind::kErrorReply) {
      uint8_t code = 0;
      if (!r.U8(&code)) return Bad("error reply truncated in the status code");
      if (code < 1 || code > 16) {
        return Bad(absl::StrCat("error reply with status code ", code,
                                " (must be 1..16, a non-OK absl::StatusCode)"));
      }
      e.code = static_cast<absl::StatusCode>(code);
    }
    e.payload = r.Rest();
    if ((e.kind == MessageKind::kPing || e.kind == MessageKind::kPong) && !e.payload.empty()) {
      return Bad(absl::StrCat(KindName(e.kind), " with ", e.payload.size(), " trailing bytes"));
    }
    return e;
  }
};

}  // namespace

const EnvelopeCodec& BinaryCodec() {
  static const Binary* const codec = new Binary();
  return *codec;
}

std::string EncodeEnvelope(const EnvelopeCodec& codec, const Envelope& e) {
  std::string out = codec.EncodeHead(e);
  out += e.payload;
  return out;
}

Envelope ErrorEnvelope(uint64_t id, const absl::Status& status) {
  Envelope e;
  e.kind = MessageKind::kErrorReply;
  e.id = id;
  e.code = status.ok() ? absl::StatusCode::kUnknown : status.code();
  e.payload = std::string_view(status.message().data(), status.message().size());
  return e;
}

absl::Status StatusFromEnvelope(const Envelope& e) {
  NETLAYER_ASSERT(e.kind == MessageKind::kErrorReply, "StatusFromEnvelope needs an error reply");
  return absl::Status(e.code, absl::string_view(e.payload.data(), e.payload.size()));
}

}  // namespace netlayer::rpc
