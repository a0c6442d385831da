// A host of the world: its name, whether it is up, its incarnation, its listeners, and the
// objects it hands to the application (HostEnv, the client and server factories).
//
// HostEnv is the host's Env: Now() is the virtual time, RunAt schedules a timer owned by the
// host (dropped if the host crashes first), NewNotification blocks by running the world.
//
// Thread rules: the world's single thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "netlayer/core/env.h"
#include "sim_types.h"

namespace netlayer::sim {

class SimClientFactory;
class SimServerFactory;

class SimNotification final : public Notification {
 public:
  explicit SimNotification(WorldRef world) : world_(std::move(world)) {}
  void Notify() override { notified_ = true; }
  bool HasBeenNotified() const override { return notified_; }
  bool WaitUntil(absl::Time deadline) override;

 private:
  WorldRef world_;
  bool notified_ = false;
};

class HostEnv final : public Env {
 public:
  HostEnv(World::Impl* world, HostId host) : world_(world), host_(host) {}
  absl::Time Now() const override;
  TimerId RunAt(absl::Time when, absl::AnyInvocable<void() &&> fn) override;
  bool CancelTimer(TimerId id) override;
  std::unique_ptr<Notification> NewNotification() override;

 private:
  World::Impl* world_;
  HostId host_;
};

struct Host {
  Host();
  ~Host();
  Host(Host&&) noexcept;
  Host& operator=(Host&&) noexcept;

  std::string name;
  bool up = true;
  bool crashable = false;
  // Bumped by each crash: an event owned by the host (a timer, a connect step, the restart
  // hook, a delivery to one of its connections) is dropped if the host crashed after it was
  // scheduled, even if the host is up again.
  uint64_t incarnation = 0;
  std::function<void()> restart_hook;
  uint16_t next_port = 49152;
  std::map<uint16_t, std::shared_ptr<SimListener>> listeners;  // open listeners by port
  std::unique_ptr<HostEnv> env;
  std::unique_ptr<SimClientFactory> client;
  std::unique_ptr<SimServerFactory> server;
};

}  // namespace netlayer::sim
