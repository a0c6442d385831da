#include "listener.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "netlayer/core/assert.h"
#include "network.h"
#include "sim_connection.h"
#include "world_parts.h"

namespace netlayer::sim {

std::shared_ptr<Connection> SimListener::Accept(absl::Time deadline) {
  WorldParts* w = *world_;
  if (w == nullptr || callback_) return nullptr;
  w->loop.RunUntil([this]() { return !queue_.empty() || !open_; }, deadline);
  if (queue_.empty()) return nullptr;
  std::shared_ptr<SimConnection> c = std::move(queue_.front());
  queue_.pop_front();
  if (WorldParts* now = *world_) now->listeners.CheckInvariants(*this);
  return c;
}

void SimListener::Close() {
  if (!open_) return;
  WorldParts* w = *world_;
  if (w == nullptr) {
    open_ = false;
    return;
  }
  w->listeners.Close(*this, "closed");
}

void Listeners::Close(SimListener& l, const char* why) {
  if (!l.IsOpen()) return;
  l.MarkClosed();
  w_.Record(l.host(), TraceKind::kListen,
            absl::StrCat("listener ", l.address().ToString(), " ", why));
  // Connections not yet accepted are reset, as closing a listening socket does.
  std::deque<std::shared_ptr<SimConnection>> pending = std::move(l.queue());
  l.queue().clear();
  for (const auto& c : pending) {
    if (c->link() != nullptr) w_.net.ResetLink(*c->link(), "listener closed before accept");
  }
  // Erasing may destroy the listener: keep it alive to the end of this call.
  Host& h = w_.host(l.host());
  auto it = h.listeners.find(l.address().port());
  if (it != h.listeners.end() && it->second.get() == &l) {
    std::shared_ptr<SimListener> keep = std::move(it->second);
    h.listeners.erase(it);
    CheckInvariants(l);
    return;
  }
  CheckInvariants(l);
}

void Listeners::CheckInvariants(const SimListener& l) const {
  const Host& h = w_.host(l.host());
  auto it = h.listeners.find(l.address().port());
  const bool registered = it != h.listeners.end() && it->second.get() == &l;
  NETLAYER_ASSERT(l.IsOpen() == registered,
                  "a listener is in its host's table exactly while it is open");
  NETLAYER_ASSERT(l.IsOpen() || l.queue().empty(), "a closed listener queues nothing");
  NETLAYER_ASSERT(!l.callback() || l.queue().empty(), "a callback listener queues nothing");
  NETLAYER_ASSERT(l.queue().size() <= w_.options.profile.accept_backlog,
                  "an accept queue holds at most accept_backlog streams");
  for (const auto& c : l.queue()) {
    NETLAYER_ASSERT(c->host() == l.host() && c->side() == 1,
                    "a queued stream is an accepting end on the listener's host");
  }
}

void Listeners::DropHost(HostId host, const char* why) {
  Host& h = w_.host(host);
  std::map<uint16_t, std::shared_ptr<SimListener>> doomed = std::move(h.listeners);
  h.listeners.clear();
  for (const auto& [port, l] : doomed) {
    if (!l->IsOpen()) continue;
    l->MarkClosed();
    w_.Record(host, TraceKind::kListen,
              absl::StrCat("listener ", l->address().ToString(), " ", why));
    std::deque<std::shared_ptr<SimConnection>> pending = std::move(l->queue());
    l->queue().clear();
    for (const auto& c : pending) {
      NETLAYER_ASSERT(c->fate() != SimConnection::Fate::kLive || c->link() == nullptr,
                      "a dead host's queued streams died with it");
    }
    CheckInvariants(*l);
  }
}

void Listeners::Arrive(SimListener& l, const std::shared_ptr<SimConnection>& end) {
  if (l.callback()) {
    if (w_.host(l.host()).Admits(HostWork::kAccept) == Admission::kLater) {
      // The kernel accepted it; the stopped process hears of it when it resumes.
      w_.loop.Schedule(w_.loop.now, l.host(), false, [keep = l.shared_from_this(), end]() {
        if (keep->IsOpen()) keep->callback()(end);
      });
      return;
    }
    l.callback()(end);
  } else {
    l.queue().push_back(end);
    CheckInvariants(l);
  }
}

absl::StatusOr<std::shared_ptr<Listener>> SimServerFactory::Listen(const Address& address) {
  return Listen(address, nullptr);
}

absl::StatusOr<std::shared_ptr<Listener>> SimServerFactory::Listen(const Address& address,
                                                                   AcceptCallback on_accept) {
  return world_->listeners.Listen(host_, address, std::move(on_accept));
}

absl::StatusOr<std::shared_ptr<Listener>> Listeners::Listen(HostId host, const Address& address,
                                                            AcceptCallback on_accept) {
  if (w_.loop.destroying) {
    return absl::FailedPreconditionError("sim: listen while the world is ending");
  }
  Host& h = w_.host(host);
  if (address.kind() != Address::Kind::kHostName) {
    return absl::InvalidArgumentError(
        absl::StrCat("sim: listen on '", address.ToString(),
                     "': the simulator takes host-name addresses such as 'server:8100'"));
  }
  if (address.host() != h.name) {
    return absl::InvalidArgumentError(absl::StrCat("sim: host '", h.name, "' cannot listen on '",
                                                   address.ToString(), "' (another host's name)"));
  }
  if (h.Admits(HostWork::kStart) == Admission::kNever) {
    return absl::UnavailableError(absl::StrCat("sim: host '", h.name, "' is down"));
  }
  uint16_t port = address.port();
  if (port == 0) {
    for (uint32_t tries = 0; tries < 16384; ++tries) {
      const uint16_t candidate = h.next_port;
      h.next_port = h.next_port == 65535 ? 49152 : static_cast<uint16_t>(h.next_port + 1);
      if (!h.listeners.contains(candidate)) {
        port = candidate;
        break;
      }
    }
    if (port == 0) return absl::ResourceExhaustedError("sim: no free ephemeral port");
  }
  if (h.listeners.contains(port)) {
    return absl::AlreadyExistsError(
        absl::StrCat("sim: address ", h.name, ":", port, " is already in use by a listener"));
  }
  auto listener = std::make_shared<SimListener>(w_.ref, host, Address::HostName(h.name, port),
                                                std::move(on_accept));
  h.listeners.emplace(port, listener);
  CheckInvariants(*listener);
  w_.Record(host, TraceKind::kListen,
            absl::StrCat("listen ", listener->address().ToString(),
                         listener->callback() ? " (callback)" : "", " backlog ",
                         w_.options.profile.accept_backlog));
  return listener;
}

}  // namespace netlayer::sim
