#include "netlayer/sim/disk.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fault_decider.h"
#include "netlayer/core/assert.h"
#include "world_parts.h"

namespace netlayer::sim {
namespace {

constexpr uint64_t kSector = 512;

std::string Parent(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

std::string DiskProfile::Describe() const {
  auto prob = [](double p) { return p > 0 ? absl::StrCat(p) : std::string("off"); };
  return absl::StrCat(
      "disk: sync=", absl::FormatDuration(sync_latency_min), "+exp(",
      absl::FormatDuration(sync_latency_mean), ") eio=", prob(sync_eio_probability),
      sync_eio_probability > 0 ? absl::StrCat("(drops ", eio_drops_probability, ")") : "",
      " enospc=", prob(append_enospc_probability), " capacity=",
      capacity_bytes == UINT64_MAX ? std::string("unbounded") : absl::StrCat(capacity_bytes),
      " torn=", torn_probability);
}

DiskProfile DrawDiskProfile(uint64_t seed) {
  Xoshiro256 gen(seed ^ kDiskSalt);
  DiskProfile p;
  p.sync_latency_min = absl::Microseconds(static_cast<int64_t>(UniformInt(gen, 20, 500)));
  p.sync_latency_mean = absl::Microseconds(static_cast<int64_t>(UniformInt(gen, 50, 5000)));
  if (Bernoulli(gen, 0.5)) p.sync_eio_probability = 0.002 + 0.05 * UniformDouble(gen);
  p.eio_drops_probability = UniformDouble(gen);
  if (Bernoulli(gen, 0.5)) p.append_enospc_probability = 0.002 + 0.03 * UniformDouble(gen);
  p.torn_probability = UniformDouble(gen);
  return p;
}

// ---- Files ----

class SimDisk::Writable final : public WritableFile {
 public:
  Writable(std::shared_ptr<SimDisk*> disk, std::string path, uint64_t process)
      : disk_(std::move(disk)), path_(std::move(path)), process_(process) {}

  absl::Status Append(std::string_view data) override {
    SimDisk* d = Live();
    if (d == nullptr) return Stale("append");
    return d->Append(path_, data);
  }
  absl::Status Sync() override {
    SimDisk* d = Live();
    if (d == nullptr) return Stale("sync");
    File* f = d->Find(path_);
    if (f == nullptr) return absl::NotFoundError(absl::StrCat("sim disk: sync ", path_, ": gone"));
    return d->SyncNow(path_, f->data.size());
  }
  void SyncAsync(absl::AnyInvocable<void(absl::Status) &&> done) override {
    SimDisk* d = Live();
    if (d == nullptr) return;  // a dead process's file: nothing will report
    File* f = d->Find(path_);
    const uint64_t upto = f == nullptr ? 0 : f->data.size();
    Env& env = d->env_;
    env.RunAt(env.Now() + d->SyncLatency(),
              [disk = disk_, path = path_, upto, done = std::move(done)]() mutable {
                if (*disk == nullptr) return;
                (*disk)->CompleteSync(path, upto, std::move(done));
              });
  }
  uint64_t Size() const override {
    SimDisk* d = *disk_;
    if (d == nullptr) return 0;
    const File* f = d->Find(path_);
    return f == nullptr ? 0 : f->data.size();
  }
  absl::Status Close() override { return absl::OkStatus(); }

 private:
  SimDisk* Live() const {
    SimDisk* d = *disk_;
    return d != nullptr && d->process_ == process_ ? d : nullptr;
  }
  absl::Status Stale(const char* op) const {
    return absl::FailedPreconditionError(
        absl::StrCat("sim disk: ", op, " ", path_, ": the process that opened it is gone"));
  }

  std::shared_ptr<SimDisk*> disk_;
  const std::string path_;
  const uint64_t process_;
};

class SimDisk::Readable final : public RandomAccessFile {
 public:
  Readable(std::shared_ptr<SimDisk*> disk, std::string path)
      : disk_(std::move(disk)), path_(std::move(path)) {}
  absl::StatusOr<std::string> Read(uint64_t offset, size_t n) const override {
    SimDisk* d = *disk_;
    const File* f = d == nullptr ? nullptr : d->Find(path_);
    if (f == nullptr) return absl::NotFoundError(absl::StrCat("sim disk: read ", path_));
    if (offset >= f->data.size()) return std::string();
    return f->data.substr(offset, n);
  }
  absl::StatusOr<uint64_t> Size() const override {
    SimDisk* d = *disk_;
    const File* f = d == nullptr ? nullptr : d->Find(path_);
    if (f == nullptr) return absl::NotFoundError(absl::StrCat("sim disk: stat ", path_));
    return f->data.size();
  }

 private:
  std::shared_ptr<SimDisk*> disk_;
  const std::string path_;
};

class SimDisk::Lock final : public FileLock {
 public:
  Lock(std::shared_ptr<SimDisk*> disk, std::string path, uint64_t process)
      : disk_(std::move(disk)), path_(std::move(path)), process_(process) {}
  ~Lock() override {
    SimDisk* d = *disk_;
    if (d != nullptr && d->process_ == process_) d->locks_.erase(path_);
  }

 private:
  std::shared_ptr<SimDisk*> disk_;
  const std::string path_;
  const uint64_t process_;
};

// ---- SimDisk ----

SimDisk::SimDisk(Env& env, uint64_t seed, std::function<void(const std::string&)> trace)
    : env_(env), gen_(seed), trace_(std::move(trace)), self_(std::make_shared<SimDisk*>(this)) {
  dirs_.insert("/");
}

SimDisk::~SimDisk() { *self_ = nullptr; }

SimDisk::File* SimDisk::Find(const std::string& path) {
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : &it->second;
}

absl::Duration SimDisk::SyncLatency() {
  return profile_.sync_latency_min + ExpDuration(gen_, profile_.sync_latency_mean);
}

uint64_t SimDisk::used_bytes() const {
  uint64_t used = 0;
  for (const auto& [path, f] : files_) used += f.data.size();
  return used;
}

absl::Status SimDisk::Append(const std::string& path, std::string_view data) {
  File* f = Find(path);
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("sim disk: append ", path, ": gone"));
  ++counters_.appends;
  size_t fits = data.size();
  std::string why;
  if (full_) {
    fits = 0;
    why = "the disk is full (scripted)";
  } else if (const uint64_t used = used_bytes(); used + data.size() > profile_.capacity_bytes) {
    fits = static_cast<size_t>(profile_.capacity_bytes - std::min(used, profile_.capacity_bytes));
    why = "the disk is full (capacity)";
  } else if (!faults_stopped_ && !data.empty() &&
             Bernoulli(gen_, profile_.append_enospc_probability)) {
    fits = static_cast<size_t>(UniformInt(gen_, 0, data.size() - 1));
    why = "the disk is full (drawn)";
  }
  f->data.append(data.substr(0, fits));
  if (fits == data.size()) return absl::OkStatus();
  ++counters_.enospc;
  Trace(absl::StrCat("disk ENOSPC: append of ", data.size(), " bytes to ", path, " wrote ", fits,
                     ": ", why));
  return absl::ResourceExhaustedError(
      absl::StrCat("write ", path, ": No space left on device (sim disk: ", why, ")"));
}

absl::Status SimDisk::SyncNow(const std::string& path, uint64_t upto) {
  File* f = Find(path);
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("sim disk: sync ", path, ": gone"));
  ++counters_.syncs;
  const bool fail =
      fail_syncs_ > 0 || (!faults_stopped_ && Bernoulli(gen_, profile_.sync_eio_probability));
  if (fail) {
    if (fail_syncs_ > 0) --fail_syncs_;
    ++counters_.sync_failures;
    const uint64_t unsynced = f->data.size() - f->durable;
    const bool drops = Bernoulli(gen_, profile_.eio_drops_probability);
    if (drops) f->data.resize(f->durable);
    Trace(absl::StrCat("disk EIO: sync of ", path, " failed; ", unsynced, " unsynced bytes ",
                       drops ? "dropped" : "kept (still unsynced)"));
    return absl::DataLossError(absl::StrCat("fdatasync ", path, ": Input/output error (sim disk)"));
  }
  // The bytes appended before the sync was asked for (a later truncate may have cut them).
  f->durable = std::max(f->durable, std::min<uint64_t>(upto, f->data.size()));
  return absl::OkStatus();
}

void SimDisk::CompleteSync(const std::string& path, uint64_t upto,
                           absl::AnyInvocable<void(absl::Status) &&> done) {
  std::move(done)(SyncNow(path, upto));
}

absl::StatusOr<std::unique_ptr<WritableFile>> SimDisk::NewAppendableFile(const std::string& path) {
  if (!dirs_.contains(Parent(path))) {
    return absl::NotFoundError(absl::StrCat("open ", path, ": no such directory (sim disk)"));
  }
  files_.try_emplace(path);
  return std::make_unique<Writable>(self_, path, process_);
}

absl::StatusOr<std::unique_ptr<RandomAccessFile>> SimDisk::NewRandomAccessFile(
    const std::string& path) {
  if (Find(path) == nullptr) {
    return absl::NotFoundError(absl::StrCat("open ", path, ": no such file (sim disk)"));
  }
  return std::make_unique<Readable>(self_, path);
}

absl::Status SimDisk::CreateDir(const std::string& path) {
  if (!dirs_.contains(Parent(path))) {
    return absl::NotFoundError(absl::StrCat("mkdir ", path, ": no parent (sim disk)"));
  }
  dirs_.insert(path);
  return absl::OkStatus();
}

bool SimDisk::FileExists(const std::string& path) {
  return files_.contains(path) || dirs_.contains(path);
}

absl::StatusOr<std::vector<std::string>> SimDisk::ListDir(const std::string& path) {
  if (!dirs_.contains(path)) return absl::NotFoundError(absl::StrCat("list ", path, " (sim disk)"));
  std::vector<std::string> names;
  const std::string prefix = path == "/" ? "/" : path + "/";
  auto add = [&](const std::string& p) {
    if (p.size() > prefix.size() && p.compare(0, prefix.size(), prefix) == 0 &&
        p.find('/', prefix.size()) == std::string::npos) {
      names.push_back(p.substr(prefix.size()));
    }
  };
  for (const auto& [p, f] : files_) add(p);
  for (const std::string& d : dirs_) add(d);
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status SimDisk::Remove(const std::string& path) {
  if (files_.erase(path) == 0) {
    return absl::NotFoundError(absl::StrCat("remove ", path, ": no such file (sim disk)"));
  }
  return absl::OkStatus();
}

absl::Status SimDisk::Rename(const std::string& from, const std::string& to) {
  auto it = files_.find(from);
  if (it == files_.end()) {
    return absl::NotFoundError(absl::StrCat("rename ", from, ": no such file (sim disk)"));
  }
  File moved = std::move(it->second);
  files_.erase(it);
  files_[to] = std::move(moved);
  return absl::OkStatus();
}

absl::Status SimDisk::Truncate(const std::string& path, uint64_t size) {
  File* f = Find(path);
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("truncate ", path, ": no such file (sim disk)"));
  }
  if (size < f->data.size()) f->data.resize(size);
  // Durable at once (ftruncate + fsync): what remains of the file is as durable as it was.
  f->durable = std::min<uint64_t>(f->durable, f->data.size());
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FileLock>> SimDisk::LockFile(const std::string& path) {
  if (!dirs_.contains(Parent(path))) {
    return absl::NotFoundError(absl::StrCat("lock ", path, ": no such directory (sim disk)"));
  }
  files_.try_emplace(path);
  if (!locks_.insert(path).second) {
    return absl::FailedPreconditionError(absl::StrCat("lock ", path, ": held by another process"));
  }
  return std::make_unique<Lock>(self_, path, process_);
}

void SimDisk::SetFull(bool full) {
  full_ = full;
  Trace(full ? "disk full (scripted)" : "disk has space again (scripted)");
}

void SimDisk::OnProcessCrash() {
  ++process_;
  ++counters_.process_crashes;
  locks_.clear();
}

void SimDisk::OnPowerLoss(Generator& gen) {
  ++process_;
  ++counters_.power_losses;
  locks_.clear();
  for (auto& [path, f] : files_) {
    const uint64_t unsynced = f.data.size() - f.durable;
    if (unsynced == 0) continue;
    uint64_t keep = f.durable;
    if (Bernoulli(gen, profile_.torn_probability)) {
      // Sectors written back before the power went: a prefix of the unsynced bytes, ending on a
      // 512-byte boundary of the file.
      const uint64_t end = f.durable + UniformInt(gen, 0, unsynced);
      keep = std::max(f.durable, end - end % kSector);
    }
    if (keep > f.durable) ++counters_.torn;
    Trace(absl::StrCat("disk power loss: ", path, " keeps ", keep - f.durable, " of ", unsynced,
                       " unsynced bytes",
                       keep > f.durable ? " (torn at a 512-byte boundary)" : ""));
    f.data.resize(keep);
    f.durable = keep;
  }
}

std::string SimDisk::Contents(const std::string& path) const {
  auto it = files_.find(path);
  return it == files_.end() ? std::string() : it->second.data;
}

std::string SimDisk::DurableContents(const std::string& path) const {
  auto it = files_.find(path);
  return it == files_.end() ? std::string() : it->second.data.substr(0, it->second.durable);
}

// ---- The world's side ----

// The host's disk, made on first use (a host that never touches files has none to trace).
SimDisk& HostDisk(WorldParts& w, HostId host) {
  Host& h = w.host(host);
  if (h.disk == nullptr) {
    WorldParts* impl = &w;
    const uint64_t seed =
        w.options.seed ^ kDiskSalt ^ ((uint64_t{host.value} + 1) * 0x9E3779B97F4A7C15ULL);
    h.disk = std::make_unique<SimDisk>(*h.env, seed, [impl, host](const std::string& what) {
      impl->Record(host, TraceKind::kFault, what);
    });
  }
  return *h.disk;
}

FileSystem& HostEnv::fs() { return HostDisk(*world_, host_); }

}  // namespace netlayer::sim
