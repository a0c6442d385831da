// SimDisk: a simulated host's disk, the FileSystem (core/file_system.h) its Env::fs() returns
// (World::disk). docs/SIMULATOR.md, "The disk".
//
// Each file has what the process sees (the page cache: every byte appended, synced or not) and
// a durable length: the prefix that a sync made durable. Faults, as a kernel and a device produce
// them:
//   - process crash (OnProcessCrash, from World::Crash): the kernel survives, so does the page
//     cache: nothing is lost; the dead process's locks are released and its open files refuse
//     further use.
//   - power loss (OnPowerLoss, World::LosePower): each file keeps its durable prefix and, if the
//     draw says torn, a part of its unsynced bytes cut at a 512-byte boundary (sectors written
//     back before the power went: the last unsynced write torn); the rest is gone.
//   - a sync fails with EIO (sync_eio_probability, or FailNextSyncs): DataLoss; with
//     eio_drops_probability the unsynced bytes are gone from the file at once (the kernel dropped
//     the failed pages: the file is back at its durable length, and a retried sync succeeds
//     without bringing them back), otherwise they stay unsynced.
//   - disk full: an append past capacity_bytes, or drawn with append_enospc_probability, or while
//     SetFull(true), writes a part of its bytes (what fits, or a drawn prefix) and fails
//     ResourceExhausted (ENOSPC).
//   - latency: SyncAsync completes after sync_latency_min + Exponential(sync_latency_mean) of the
//     host's time (a host timer: a crash drops it, the sync then never reports). The synchronous
//     calls complete at once (Sync too: use SyncAsync where latency matters).
// Metadata (create, rename, remove, truncate) is durable at once. Every fault is traced (kind
// "fault", on the host) so it is on the timeline.
//
// Determinism: the disk draws from its own generator (seeded from the world's seed and the
// host's number), never from the world's, so adding disk activity does not move network draws.
//
// Thread rules: the world's single thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "netlayer/core/env.h"
#include "netlayer/core/file_system.h"
#include "netlayer/core/generator.h"

namespace netlayer::sim {

struct DiskProfile {
  absl::Duration sync_latency_min = absl::Microseconds(100);
  absl::Duration sync_latency_mean = absl::Microseconds(400);
  double sync_eio_probability = 0.0;
  double eio_drops_probability = 0.5;
  uint64_t capacity_bytes = UINT64_MAX;
  double append_enospc_probability = 0.0;
  // At power loss, a file with unsynced bytes keeps a 512-aligned part of them.
  double torn_probability = 0.5;

  bool HasFaults() const {
    return sync_eio_probability > 0 || append_enospc_probability > 0 ||
           capacity_bytes != UINT64_MAX;
  }
  // One line: "disk: sync=0.1ms+exp(0.4ms) eio=0.02(drops 0.5) enospc=off full=off torn=0.5".
  std::string Describe() const;
};

// A disk mix drawn from `seed` (swarm testing: each of EIO and ENOSPC is on with probability
// 1/2, with an intensity drawn from its range; latency and torn probability drawn), on its own
// generator stream (seed ^ kDiskSalt).
DiskProfile DrawDiskProfile(uint64_t seed);
inline constexpr uint64_t kDiskSalt = 0x6469736b;  // "disk"

class SimDisk final : public FileSystem {
 public:
  // `env`: the host's (latency timers); `trace`: records a fault on the host's trace.
  SimDisk(Env& env, uint64_t seed, std::function<void(const std::string&)> trace);
  ~SimDisk() override;

  // ---- FileSystem ----
  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override;
  absl::Status CreateDir(const std::string& path) override;
  bool FileExists(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override;
  absl::Status Remove(const std::string& path) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status Truncate(const std::string& path, uint64_t size) override;
  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;

  // ---- The world's verbs ----
  // The host's process died; the kernel and its page cache survive.
  void OnProcessCrash();
  // The host lost power: unsynced bytes are lost, the last unsynced write maybe torn.
  void OnPowerLoss(Generator& gen);

  // ---- Faults, scripted ----
  void set_profile(const DiskProfile& profile) { profile_ = profile; }
  const DiskProfile& profile() const { return profile_; }
  // The next `n` syncs fail with EIO.
  void FailNextSyncs(int n) { fail_syncs_ += n; }
  // While full, every append fails ENOSPC (writing nothing).
  void SetFull(bool full);
  // Faults drawn from the profile stop (the liveness phase); scripted ones still work.
  void StopFaults() { faults_stopped_ = true; }

  // ---- Introspection (tests, scenarios) ----
  // What the process reads now, and what would survive a power loss now.
  std::string Contents(const std::string& path) const;
  std::string DurableContents(const std::string& path) const;
  uint64_t used_bytes() const;
  struct Counters {
    uint64_t appends = 0;
    uint64_t syncs = 0;
    uint64_t sync_failures = 0;
    uint64_t enospc = 0;
    uint64_t power_losses = 0;
    uint64_t torn = 0;
    uint64_t process_crashes = 0;
  };
  const Counters& counters() const { return counters_; }
  Generator& generator() { return gen_; }

 private:
  class Writable;
  class Readable;
  class Lock;
  struct File {
    std::string data;      // the page cache: everything appended
    uint64_t durable = 0;  // data[0, durable) survives a power loss
  };
  File* Find(const std::string& path);
  void Trace(const std::string& what) { trace_(what); }
  absl::Status Append(const std::string& path, std::string_view data);
  void CompleteSync(const std::string& path, uint64_t upto,
                    absl::AnyInvocable<void(absl::Status) &&> done);
  absl::Status SyncNow(const std::string& path, uint64_t upto);
  absl::Duration SyncLatency();

  Env& env_;
  Xoshiro256 gen_;
  std::function<void(const std::string&)> trace_;
  DiskProfile profile_;
  std::map<std::string, File> files_;
  std::set<std::string> dirs_;
  std::set<std::string> locks_;
  uint64_t process_ = 0;  // bumped by each crash or power loss: the process's files go stale
  int fail_syncs_ = 0;
  bool full_ = false;
  bool faults_stopped_ = false;
  Counters counters_;
  // Cleared by the destructor: files and locks that outlive the disk do nothing.
  std::shared_ptr<SimDisk*> self_;
};

}  // namespace netlayer::sim
