// FileSystem: files, injected like the clock (LevelDB's Env is the model), so an application
// written against Env keeps durable state on any backend: the posix file system
// (netlayer/threaded/file_system.h: real files, every system call through an injectable
// threaded::FileSys) and the simulator's per-host disk (netlayer/sim/disk.h: volatile until
// synced, power loss, torn writes, EIO, disk full).
//
// The model is the one durable stores need and no more: files are written append-only (a log),
// read at any offset, truncated (a torn tail cut off at recovery), renamed, removed, listed, and a
// directory is owned by one process at a time (LockFile). Data appended is durable only once a
// Sync/SyncAsync covering it succeeded; a failed sync may have lost it (as on Linux: a retried
// sync does not bring it back). Metadata (create, rename, remove, truncate) is durable when the
// call returns (the posix implementation syncs the directory; the simulated disk treats it so).
//
// Errors: NotFound (no such file), AlreadyExists, ResourceExhausted (ENOSPC, disk full),
// DataLoss (EIO: the device failed), FailedPrecondition (a lock held elsewhere, a closed file),
// Unimplemented (the Env has no file system), Internal (anything else), each naming the path and
// the operation.
//
// Thread rules: a FileSystem may be called from any thread. A WritableFile is used by one thread
// at a time (the caller serialises Append/Sync/Close), except that SyncAsync's callback runs on
// the file system's own context (posix: its sync thread; sim: the world) while the owner may
// Append meanwhile; the sync covers what was appended before SyncAsync was called.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace netlayer {

// A file open for appending. Destroying it closes it (errors ignored; call Close to see them).
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends all of `data` or fails; after a failure part of it may have been written (a short
  // write before ENOSPC): the caller must treat the file's tail as unknown.
  virtual absl::Status Append(std::string_view data) = 0;
  // Makes everything appended so far durable (fdatasync), blocking the caller. May not be
  // called from inside a simulator callback (sim: runs at once, no latency; prefer SyncAsync).
  virtual absl::Status Sync() = 0;
  // Makes everything appended before this call durable, then runs `done` with the outcome,
  // exactly once, never inside SyncAsync itself: on the file system's sync context (posix: a
  // thread of the file system, one sync at a time per file; sim: the world, after the disk's
  // latency). A file destroyed with a sync pending still runs `done` (posix: after the sync;
  // sim: with the outcome the disk draws).
  virtual void SyncAsync(absl::AnyInvocable<void(absl::Status) &&> done) = 0;
  // Bytes in the file (what was appended, whether synced or not).
  virtual uint64_t Size() const = 0;
  virtual absl::Status Close() = 0;
};

// A file open for reading at any offset.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Up to `n` bytes from `offset` (fewer at the end of the file; none past it).
  virtual absl::StatusOr<std::string> Read(uint64_t offset, size_t n) const = 0;
  virtual absl::StatusOr<uint64_t> Size() const = 0;
};

// Held while it lives: the directory lock (LockFile).
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Opens `path` for appending, creating it if missing (its existing bytes are kept).
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) = 0;
  virtual absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) = 0;
  virtual absl::Status CreateDir(const std::string& path) = 0;  // OK if it exists
  virtual bool FileExists(const std::string& path) = 0;
  // The names in a directory (not "." or ".."), sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) = 0;
  virtual absl::Status Remove(const std::string& path) = 0;
  // Atomically replaces `to` with `from`.
  virtual absl::Status Rename(const std::string& from, const std::string& to) = 0;
  // Cuts the file to `size` bytes and makes that durable (a torn tail removed at recovery).
  virtual absl::Status Truncate(const std::string& path, uint64_t size) = 0;
  // Takes an exclusive lock on `path` (created if missing) for this process; FailedPrecondition
  // if another process (or another LockFile of this one) holds it. Released when the FileLock
  // is destroyed or the process ends (sim: when the host crashes).
  virtual absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
};

// A file system that fails every call Unimplemented ("this Env has no file system"): what an
// Env without files returns from Env::fs(). Never destroyed.
FileSystem& NoFileSystem();

// Reads a whole file (NewRandomAccessFile + Read in chunks).
absl::StatusOr<std::string> ReadFileToString(FileSystem& fs, const std::string& path);

}  // namespace netlayer
