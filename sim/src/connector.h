// Connector: connect attempts and the SYN model.
//
// A connect (PendingConnect) follows core ConnectSchedule: each attempt sends a SYN that takes
// one latency to reach the target. At the target: host down or a partition -> the SYN is lost
// and retransmitted after an RTO that doubles (1 s, 2 s, ...); a clog holds it; no listener ->
// refused one latency later; a full accept backlog -> lost; otherwise the stream is made at the
// listener and the client learns it one latency later (Established). The schedule's deadline
// (attempt timeout or give-up) ends an attempt that hangs.
//
// Thread rules: the world's single thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "netlayer/core/connect_schedule.h"
#include "netlayer/core/factory.h"
#include "sim_types.h"

namespace netlayer::sim {

class PendingConnect final : public ConnectAttempt {
 public:
  PendingConnect(WorldRef world, uint64_t id, HostId host, ConnectSchedule schedule,
                 std::shared_ptr<ConnectHandler> handler, bool blocking)
      : world(std::move(world)),
        id(id),
        host(host),
        schedule(std::move(schedule)),
        handler(std::move(handler)),
        blocking(blocking) {}
  void Cancel() override;
  bool done() const override { return finished; }

  WorldRef world;
  uint64_t id;
  HostId host;
  ConnectSchedule schedule;
  std::shared_ptr<ConnectHandler> handler;
  bool blocking;
  bool finished = false;
  // The current attempt.
  bool trying = false;
  uint64_t try_no = 0;
  HostId target = kNoHost;
  Address target_address = Address::HostName("none", 0);
  uint64_t deadline_event = 0;
  absl::Duration rto = absl::Seconds(1);
  std::shared_ptr<Link> link;  // created at the listener, waiting for the SYN-ACK to arrive
};

class SimClientFactory final : public ClientConnectionFactory {
 public:
  SimClientFactory(WorldParts* world, HostId host) : world_(world), host_(host) {}
  absl::StatusOr<std::shared_ptr<ConnectAttempt>> Connect(
      std::vector<Address> addresses, ConnectOptions options,
      std::shared_ptr<ConnectHandler> handler) override;
  absl::StatusOr<std::shared_ptr<Connection>> ConnectBlocking(std::vector<Address> addresses,
                                                              ConnectOptions options) override;

 private:
  WorldParts* world_;
  HostId host_;
};

class Connector {
 public:
  explicit Connector(WorldParts& w) : w_(w) {}
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  absl::StatusOr<std::shared_ptr<PendingConnect>> StartConnect(
      HostId from, std::vector<Address> addresses, ConnectOptions options,
      std::shared_ptr<ConnectHandler> handler, bool blocking);
  // InvalidArgument unless `a` names a host of this world; sets *target to it.
  absl::Status CheckTarget(const Address& a, HostId* target) const;
  void Cancel(PendingConnect& pc);
  void Finish(const std::shared_ptr<PendingConnect>& pc);

  std::map<uint64_t, std::shared_ptr<PendingConnect>> connects;  // in progress, by id
  uint64_t next_connect_id = 1;

 private:
  void Act(const std::shared_ptr<PendingConnect>& pc, ConnectSchedule::Action action);
  void Try(const std::shared_ptr<PendingConnect>& pc, size_t index, absl::Time deadline);
  void SendSyn(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no);
  void SynArrive(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no);
  void SynLost(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no, const char* why);
  void Established(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no);
  void AttemptFailed(const std::shared_ptr<PendingConnect>& pc, uint64_t try_no,
                     absl::Status status);
  static bool Current(const PendingConnect& pc, uint64_t try_no) {
    return !pc.finished && pc.trying && pc.try_no == try_no;
  }

  WorldParts& w_;
};

}  // namespace netlayer::sim
