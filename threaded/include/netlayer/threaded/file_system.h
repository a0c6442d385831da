// The posix file system (core/file_system.h on real files), shared by posix::Runtime and
// asio::Runtime (their Env::fs()), with every system call behind FileSys, so tests inject EIO on
// fdatasync, ENOSPC, short writes (FaultFileSys), as posix::Sys does for sockets.
//
//   Append    write(2) in a loop (a short write continues; EINTR retried); ENOSPC ->
//             ResourceExhausted, EIO -> DataLoss. After a failure the file's tail is unknown.
//   Sync      fdatasync(2). EIO -> DataLoss: Linux may have dropped the dirty pages, so the
//             bytes appended since the last good sync may be lost even if a later sync succeeds.
//   SyncAsync the same on the file system's sync thread (started on first use; one thread per
//             PosixFileSystem, syncs run one at a time in the order asked).
//   creating, renaming, removing and truncating also fsync the directory / file, so they are
//   durable when they return.
//   LockFile  open + flock(LOCK_EX | LOCK_NB).
//
// Thread rules: FileSys implementations must be thread-safe. A PosixFileSystem may be used from
// any thread; its destructor runs the syncs still queued (their callbacks too) and joins the sync
// thread; it must outlive every file it opened.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "netlayer/core/file_system.h"
#include "netlayer/core/mutex.h"

namespace netlayer::threaded {

// The file system's system calls; each has the call's own contract (-1 and errno on failure).
class FileSys {
 public:
  virtual ~FileSys() = default;
  virtual int Open(const char* path, int flags, mode_t mode) = 0;
  virtual int Close(int fd) = 0;
  virtual ssize_t Write(int fd, const void* buf, size_t len) = 0;
  virtual ssize_t Pread(int fd, void* buf, size_t len, off_t offset) = 0;
  virtual int Fdatasync(int fd) = 0;
  virtual int Fsync(int fd) = 0;
  virtual int Ftruncate(int fd, off_t size) = 0;
  virtual int Fstat(int fd, struct stat* out) = 0;
  virtual int Rename(const char* from, const char* to) = 0;
  virtual int Unlink(const char* path) = 0;
  virtual int Mkdir(const char* path, mode_t mode) = 0;
  virtual int Flock(int fd, int op) = 0;
  // The names in a directory (not "." / ".."), or -1 with errno.
  virtual int ListDir(const char* path, std::vector<std::string>& names) = 0;
};

// The process's real calls. Never destroyed.
FileSys& RealFileSys();

// Forwards to `base` and injects faults, queued per operation and consumed in order by the
// matching calls (each applies to `count` calls); calls with no pending fault pass through.
class FaultFileSys final : public FileSys {
 public:
  enum class Op { kOpen, kWrite, kPread, kFdatasync, kFsync, kFtruncate, kRename, kFlock };
  struct Fault {
    int error = 0;           // errno to fail with (0: no failure; see short_bytes)
    size_t short_bytes = 0;  // kWrite with error 0: write at most this many bytes (a short write)
    int count = 1;
  };
  explicit FaultFileSys(FileSys& base = RealFileSys()) : base_(base) {}
  void Inject(Op op, Fault fault);
  // Every later call of `op` fails with `error` (0 turns it off).
  void FailAlways(Op op, int error);
  int calls(Op op) const;

  int Open(const char* path, int flags, mode_t mode) override;
  int Close(int fd) override { return base_.Close(fd); }
  ssize_t Write(int fd, const void* buf, size_t len) override;
  ssize_t Pread(int fd, void* buf, size_t len, off_t offset) override;
  int Fdatasync(int fd) override;
  int Fsync(int fd) override;
  int Ftruncate(int fd, off_t size) override;
  int Fstat(int fd, struct stat* out) override { return base_.Fstat(fd, out); }
  int Rename(const char* from, const char* to) override;
  int Unlink(const char* path) override { return base_.Unlink(path); }
  int Mkdir(const char* path, mode_t mode) override { return base_.Mkdir(path, mode); }
  int Flock(int fd, int op) override;
  int ListDir(const char* path, std::vector<std::string>& names) override {
    return base_.ListDir(path, names);
  }

 private:
  static constexpr int kOps = 8;
  // The fault for this call of `op`, consumed; nullopt-like: error 0 and short_bytes 0.
  Fault Take(Op op);

  FileSys& base_;
  mutable Mutex mu_;
  std::deque<Fault> faults_[kOps] ABSL_GUARDED_BY(mu_);
  int always_[kOps] ABSL_GUARDED_BY(mu_) = {};
  int calls_[kOps] ABSL_GUARDED_BY(mu_) = {};
};

class PosixFileSystem final : public FileSystem {
 public:
  explicit PosixFileSystem(FileSys& sys = RealFileSys()) : sys_(sys) {}
  ~PosixFileSystem() override;
  PosixFileSystem(const PosixFileSystem&) = delete;
  PosixFileSystem& operator=(const PosixFileSystem&) = delete;

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

  // The process-wide one on the real calls (never destroyed): what PosixEnv::fs() returns.
  static PosixFileSystem& Default();

  FileSys& sys() { return sys_; }
  // Runs `job` on the sync thread (after the jobs queued before it).
  void RunOnSyncThread(absl::AnyInvocable<void() &&> job);

 private:
  void SyncLoop();
  absl::Status SyncDirOf(const std::string& path);

  FileSys& sys_;
  Mutex mu_;
  std::condition_variable cv_;
  std::deque<absl::AnyInvocable<void() &&>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
};

// errno -> Status ("<op> <path>: <strerror>"): ENOSPC/EDQUOT ResourceExhausted, EIO DataLoss,
// ENOENT NotFound, EEXIST AlreadyExists, EWOULDBLOCK FailedPrecondition, else Internal.
absl::Status ErrnoStatus(int error, std::string_view op, std::string_view path);

}  // namespace netlayer::threaded
