#include "netlayer/smac/message_connection.h"

#include <array>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "netlayer/core/log.h"

namespace netlayer::smac {

absl::Status ValidateMessageOptions(const MessageOptions& o, size_t connection_max_output_bytes) {
  if (o.max_message_size == 0 || o.max_message_size > kFormatMaxMessageSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "smac: max_message_size ", o.max_message_size, " is not in [1, 2^32-1]"));
  }
  if (o.max_first_message_size > o.max_message_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "smac: max_first_message_size ", o.max_first_message_size,
        " is over max_message_size ", o.max_message_size));
  }
  if (o.max_queued_bytes < o.max_message_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "smac: max_queued_bytes ", o.max_queued_bytes, " cannot hold one message of max_message_size ",
        o.max_message_size));
  }
  if (connection_max_output_bytes != 0 &&
      connection_max_output_bytes < o.max_message_size + kHeaderSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "smac: the connection's output bound (max_output_bytes ", connection_max_output_bytes,
        ") cannot hold one frame of max_message_size (", o.max_message_size, " + ", kHeaderSize,
        " bytes): raise max_output_bytes or lower max_message_size"));
  }
  return absl::OkStatus();
}

// The core connection's handler: forwards to the MessageConnection while it exists.
class MessageConnection::Adapter final : public ConnectionHandler {
 public:
  Adapter(std::weak_ptr<MessageConnection> owner, std::shared_ptr<FrameDecoder> decoder)
      : owner_(std::move(owner)), decoder_(std::move(decoder)) {}
  void InputData(Connection&, std::string_view data) override {
    if (auto owner = owner_.lock()) owner->OnInput(data);
  }
  void ConnectionClosed(Connection&, const CloseReason& reason) override {
    if (auto owner = owner_.lock()) owner->OnCoreClosed(reason);
  }
  // The rest of a large frame's payload is read straight into the decoder's buffer.
  absl::Span<char> InputBuffer(Connection&) override {
    if (owner_.expired()) return {};
    return decoder_->PayloadSpan();
  }

 private:
  std::weak_ptr<MessageConnection> owner_;
  const std::shared_ptr<FrameDecoder> decoder_;  // kept alive while a read may write into it
};

struct MessageConnection::Dispatch {
  MessageConnection& connection;
  void operator()(MessageHandler& handler, std::string_view message) const {
    handler.MessageReceived(connection, message);
  }
  void operator()(MessageHandler& handler, const CloseReason& reason) const {
    handler.ConnectionClosed(connection, reason);
  }
};

std::shared_ptr<MessageConnection> MessageConnection::Create(std::shared_ptr<Connection> connection,
                                                             MessageOptions options) {
  NETLAYER_ASSERT(connection != nullptr, "MessageConnection needs a connection");
  std::shared_ptr<MessageConnection> mc(new MessageConnection(std::move(connection), options));
  mc->connection_->SetHandler(std::make_shared<Adapter>(mc, mc->decoder_));
  return mc;
}

MessageConnection::MessageConnection(std::shared_ptr<Connection> connection, MessageOptions options)
    : connection_(std::move(connection)),
      options_(options),
      decoder_(std::make_shared<FrameDecoder>(options.max_first_message_size != 0
                                                  ? options.max_first_message_size
                                                  : options.max_message_size)),
      // Messages never merge; the bound is a hard one (OnMessage closes rather than pass it).
      deliveries_({.max_queued_bytes = options.max_queued_bytes, .merge_input_up_to = 0}) {
  NETLAYER_ASSERT(options_.max_queued_bytes > 0, "max_queued_bytes must be positive");
  decoder_->set_budget(options_.budget);
}

MessageConnection::~MessageConnection() { connection_->Close(); }

std::shared_ptr<MessageHandler> MessageConnection::SetHandler(
    std::shared_ptr<MessageHandler> handler) {
  MutexLock lock(mu_);
  std::shared_ptr<MessageHandler> previous = deliveries_.SetHandler(std::move(handler));
  deliveries_.Deliver(lock, Dispatch{*this});
  lock.unlock();
  return previous;  // released outside the lock
}

absl::Status MessageConnection::SendV(absl::Span<const std::string_view> pieces) {
  size_t total = 0;
  for (std::string_view p : pieces) total += p.size();
  if (total > options_.max_message_size) {
    return absl::InvalidArgumentError(absl::StrCat("smac: message of ", total,
                                                   " bytes exceeds the limit of ",
                                                   options_.max_message_size, " bytes"));
  }
  const std::array<char, kHeaderSize> header = EncodeHeader(total);
  constexpr size_t kInline = 8;
  if (pieces.size() < kInline) {
    std::array<std::string_view, kInline> all;
    all[0] = std::string_view(header.data(), header.size());
    for (size_t i = 0; i < pieces.size(); ++i) all[i + 1] = pieces[i];
    return connection_->WriteV(absl::MakeConstSpan(all.data(), pieces.size() + 1));
  }
  std::vector<std::string_view> all;
  all.reserve(pieces.size() + 1);
  all.emplace_back(header.data(), header.size());
  all.insert(all.end(), pieces.begin(), pieces.end());
  return connection_->WriteV(all);
}

void MessageConnection::Close() {
  {
    MutexLock lock(mu_);
    deliveries_.CloseLocally();
  }
  connection_->Close();
}

void MessageConnection::CloseWithReason(CloseReason reason) {
  {
    MutexLock lock(mu_);
    QueueCloseAndDeliver(lock, std::move(reason));
  }
  connection_->Close();
}

bool MessageConnection::IsOpen() const {
  {
    MutexLock lock(mu_);
    if (deliveries_.closed()) return false;
  }
  return connection_->IsOpen();
}

void MessageConnection::OnInput(std::string_view data) {
  if (decoder_->state() == FrameDecoder::State::kFailed) return;
  absl::Status status = decoder_->Feed(data, [this](std::string_view message, std::string* owned) {
    if (!first_message_seen_) {
      // The first message had its own (smaller) limit; the rest have max_message_size.
      first_message_seen_ = true;
      decoder_->set_max_message_size(options_.max_message_size);
    }
    OnMessage(message, owned);
  });
  if (!status.ok()) {
    Log(LogLayer::kSmac)
        .warn("closing connection to {}: {}", connection_->peer_address().ToString(),
              status.ToString());
    // A frame the memory budget refused is this end's limit, not the peer's mistake.
    CloseWithReason(CloseReason(status.code() == absl::StatusCode::kResourceExhausted
                                    ? CloseReason::Kind::kError
                                    : CloseReason::Kind::kProtocolError,
                                std::string(status.message())));
  }
}

void MessageConnection::OnMessage(std::string_view message, std::string* owned) {
  MutexLock lock(mu_);
  if (deliveries_.closed()) return;
  const Dispatch dispatch{*this};
  if (std::shared_ptr<MessageHandler> direct = deliveries_.ClaimDirect()) {
    // Straight to the handler, no copy.
    deliveries_.DeliverDirect(lock, std::move(direct), message, dispatch);
    return;
  }
  if (!deliveries_.HasRoomFor(message.size())) {
    std::string detail =
        absl::StrCat("smac: undelivered messages would pass the bound of ",
                     options_.max_queued_bytes, " bytes (is a message handler set?)");
    Log(LogLayer::kSmac).warn("closing connection: {}", detail);
    QueueCloseAndDeliver(lock, CloseReason(CloseReason::Kind::kError, std::move(detail)));
    lock.unlock();
    connection_->Close();
    return;
  }
  deliveries_.Push(message, owned);
  deliveries_.Deliver(lock, dispatch);
}

void MessageConnection::OnCoreClosed(const CloseReason& reason) {
  MutexLock lock(mu_);
  CloseReason deliver = reason;
  if (!decoder_->at_frame_boundary() && decoder_->state() != FrameDecoder::State::kFailed) {
    // Say so: a peer that dies mid-frame is worth knowing about.
    deliver = CloseReason(reason.kind(),
                          absl::StrCat(reason.detail(), reason.detail().empty() ? "" : "; ",
                                       "a partial smac frame was discarded (",
                                       decoder_->buffered_bytes(), " bytes received)"));
  }
  // Nothing more will be fed: the partial frame's memory (and its budget charge) goes now,
  // before the handler hears of the close.
  decoder_->Discard();
  QueueCloseAndDeliver(lock, std::move(deliver));
}

void MessageConnection::QueueCloseAndDeliver(MutexLock& lock, CloseReason reason) {
  // Once only: nothing after a local Close() or an earlier close.
  if (deliveries_.PushClose(std::move(reason))) deliveries_.Deliver(lock, Dispatch{*this});
}

}  // namespace netlayer::smac
