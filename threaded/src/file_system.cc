#include "netlayer/threaded/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace netlayer::threaded {

absl::Status ErrnoStatus(int error, std::string_view op, std::string_view path) {
  const std::string message =
      absl::StrCat(std::string(op), " ", std::string(path), ": ", std::strerror(error));
  switch (error) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case EIO:
      return absl::DataLossError(message);
    case ENOENT:
      return absl::NotFoundError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case EWOULDBLOCK:
      return absl::FailedPreconditionError(message);
    default:
      return absl::InternalError(message);
  }
}

namespace {

class RealFs final : public FileSys {
 public:
  int Open(const char* path, int flags, mode_t mode) override {
    return ::open(path, flags | O_CLOEXEC, mode);
  }
  int Close(int fd) override { return ::close(fd); }
  ssize_t Write(int fd, const void* buf, size_t len) override { return ::write(fd, buf, len); }
  ssize_t Pread(int fd, void* buf, size_t len, off_t offset) override {
    return ::pread(fd, buf, len, offset);
  }
  int Fdatasync(int fd) override { return ::fdatasync(fd); }
  int Fsync(int fd) override { return ::fsync(fd); }
  int Ftruncate(int fd, off_t size) override { return ::ftruncate(fd, size); }
  int Fstat(int fd, struct stat* out) override { return ::fstat(fd, out); }
  int Rename(const char* from, const char* to) override { return ::rename(from, to); }
  int Unlink(const char* path) override { return ::unlink(path); }
  int Mkdir(const char* path, mode_t mode) override { return ::mkdir(path, mode); }
  int Flock(int fd, int op) override { return ::flock(fd, op); }
  int ListDir(const char* path, std::vector<std::string>& names) override {
    DIR* dir = ::opendir(path);
    if (dir == nullptr) return -1;
    while (dirent* entry = ::readdir(dir)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(dir);
    return 0;
  }
};

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(PosixFileSystem& fs, std::string path, int fd, uint64_t size)
      : fs_(fs), path_(std::move(path)), fd_(std::make_shared<Fd>(fs.sys(), fd)), size_(size) {}
  ~PosixWritableFile() override { (void)Close(); }

  absl::Status Append(std::string_view data) override {
    if (fd_ == nullptr)
      return absl::FailedPreconditionError(absl::StrCat("append ", path_, ": closed"));
    while (!data.empty()) {
      const ssize_t n = fs_.sys().Write(fd_->fd, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "write", path_);
      }
      if (n == 0) return ErrnoStatus(ENOSPC, "write", path_);
      size_ += static_cast<uint64_t>(n);
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (fd_ == nullptr)
      return absl::FailedPreconditionError(absl::StrCat("sync ", path_, ": closed"));
    return SyncFd(fs_.sys(), *fd_, path_);
  }

  void SyncAsync(absl::AnyInvocable<void(absl::Status) &&> done) override {
    if (fd_ == nullptr) {
      fs_.RunOnSyncThread([done = std::move(done), path = path_]() mutable {
        std::move(done)(absl::FailedPreconditionError(absl::StrCat("sync ", path, ": closed")));
      });
      return;
    }
    // The descriptor stays open until the sync ran (shared with the job).
    fs_.RunOnSyncThread(
        [sys = &fs_.sys(), fd = fd_, path = path_, done = std::move(done)]() mutable {
          std::move(done)(SyncFd(*sys, *fd, path));
        });
  }

  uint64_t Size() const override { return size_; }

  absl::Status Close() override {
    if (fd_ == nullptr) return absl::OkStatus();
    fd_.reset();  // closed by the last holder (a pending sync may still hold it)
    return absl::OkStatus();
  }

 private:
  struct Fd {
    Fd(FileSys& s, int f) : sys(s), fd(f) {}
    ~Fd() { sys.Close(fd); }
    FileSys& sys;
    int fd;
  };
  static absl::Status SyncFd(FileSys& sys, Fd& fd, const std::string& path) {
    while (sys.Fdatasync(fd.fd) != 0) {
      if (errno != EINTR) return ErrnoStatus(errno, "fdatasync", path);
    }
    return absl::OkStatus();
  }

  PosixFileSystem& fs_;
  const std::string path_;
  std::shared_ptr<Fd> fd_;
  uint64_t size_;
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(FileSys& sys, std::string path, int fd)
      : sys_(sys), path_(std::move(path)), fd_(fd) {}
  ~PosixRandomAccessFile() override { sys_.Close(fd_); }

  absl::StatusOr<std::string> Read(uint64_t offset, size_t n) const override {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      const ssize_t r =
          sys_.Pread(fd_, out.data() + got, n - got, static_cast<off_t>(offset + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "read", path_);
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    out.resize(got);
    return out;
  }

  absl::StatusOr<uint64_t> Size() const override {
    struct stat st {};
    if (sys_.Fstat(fd_, &st) != 0) return ErrnoStatus(errno, "stat", path_);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  FileSys& sys_;
  const std::string path_;
  const int fd_;
};

class PosixLock final : public FileLock {
 public:
  PosixLock(FileSys& sys, int fd) : sys_(sys), fd_(fd) {}
  ~PosixLock() override { sys_.Close(fd_); }  // closing releases the flock

 private:
  FileSys& sys_;
  const int fd_;
};

}  // namespace

FileSys& RealFileSys() {
  static RealFs* sys = new RealFs;
  return *sys;
}

// ---- FaultFileSys ----

void FaultFileSys::Inject(Op op, Fault fault) {
  MutexLock lock(mu_);
  faults_[static_cast<int>(op)].push_back(fault);
}

void FaultFileSys::FailAlways(Op op, int error) {
  MutexLock lock(mu_);
  always_[static_cast<int>(op)] = error;
}

int FaultFileSys::calls(Op op) const {
  MutexLock lock(mu_);
  return calls_[static_cast<int>(op)];
}

FaultFileSys::Fault FaultFileSys::Take(Op op) {
  MutexLock lock(mu_);
  const int i = static_cast<int>(op);
  ++calls_[i];
  if (always_[i] != 0) return Fault{always_[i], 0, 1};
  std::deque<Fault>& queue = faults_[i];
  if (queue.empty()) return Fault{};
  Fault f = queue.front();
  if (--queue.front().count <= 0) queue.pop_front();
  return f;
}

#define NETLAYER_FAULT_OR(op, call) \
  do {                              \
    const Fault f = Take(op);       \
    if (f.error != 0) {             \
      errno = f.error;              \
      return -1;                    \
    }                               \
    return call;                    \
  } while (0)

int FaultFileSys::Open(const char* path, int flags, mode_t mode) {
  NETLAYER_FAULT_OR(Op::kOpen, base_.Open(path, flags, mode));
}
ssize_t FaultFileSys::Write(int fd, const void* buf, size_t len) {
  const Fault f = Take(Op::kWrite);
  if (f.error != 0) {
    errno = f.error;
    return -1;
  }
  if (f.short_bytes > 0) len = std::min(len, f.short_bytes);
  return base_.Write(fd, buf, len);
}
ssize_t FaultFileSys::Pread(int fd, void* buf, size_t len, off_t offset) {
  NETLAYER_FAULT_OR(Op::kPread, base_.Pread(fd, buf, len, offset));
}
int FaultFileSys::Fdatasync(int fd) { NETLAYER_FAULT_OR(Op::kFdatasync, base_.Fdatasync(fd)); }
int FaultFileSys::Fsync(int fd) { NETLAYER_FAULT_OR(Op::kFsync, base_.Fsync(fd)); }
int FaultFileSys::Ftruncate(int fd, off_t size) {
  NETLAYER_FAULT_OR(Op::kFtruncate, base_.Ftruncate(fd, size));
}
int FaultFileSys::Rename(const char* from, const char* to) {
  NETLAYER_FAULT_OR(Op::kRename, base_.Rename(from, to));
}
int FaultFileSys::Flock(int fd, int op) { NETLAYER_FAULT_OR(Op::kFlock, base_.Flock(fd, op)); }

#undef NETLAYER_FAULT_OR

// ---- PosixFileSystem ----

PosixFileSystem::~PosixFileSystem() {
  std::thread thread;
  {
    MutexLock lock(mu_);
    stop_ = true;
    thread = std::move(thread_);
  }
  cv_.notify_all();
  if (thread.joinable()) thread.join();
}

PosixFileSystem& PosixFileSystem::Default() {
  static PosixFileSystem* fs = new PosixFileSystem;
  return *fs;
}

void PosixFileSystem::RunOnSyncThread(absl::AnyInvocable<void() &&> job) {
  {
    MutexLock lock(mu_);
    jobs_.push_back(std::move(job));
    if (!thread_.joinable()) thread_ = std::thread([this] { SyncLoop(); });
  }
  cv_.notify_one();
}

void PosixFileSystem::SyncLoop() {
  MutexLock lock(mu_);
  while (true) {
    while (jobs_.empty() && !stop_) cv_.wait(lock.native());
    if (jobs_.empty()) return;  // stopping, and every queued sync ran
    absl::AnyInvocable<void()&&> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    std::move(job)();
    lock.lock();
  }
}

absl::Status PosixFileSystem::SyncDirOf(const std::string& path) {
  const std::string dir = DirOf(path);
  const int fd = sys_.Open(dir.c_str(), O_RDONLY | O_DIRECTORY, 0);
  if (fd < 0) return ErrnoStatus(errno, "open directory", dir);
  const int rc = sys_.Fsync(fd);
  const int error = errno;
  sys_.Close(fd);
  if (rc != 0) return ErrnoStatus(error, "fsync directory", dir);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<WritableFile>> PosixFileSystem::NewAppendableFile(
    const std::string& path) {
  const bool existed = FileExists(path);
  const int fd = sys_.Open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  struct stat st {};
  if (sys_.Fstat(fd, &st) != 0) {
    const int error = errno;
    sys_.Close(fd);
    return ErrnoStatus(error, "stat", path);
  }
  if (!existed) {
    if (absl::Status s = SyncDirOf(path); !s.ok()) {
      sys_.Close(fd);
      return s;
    }
  }
  return std::make_unique<PosixWritableFile>(*this, path, fd, static_cast<uint64_t>(st.st_size));
}

absl::StatusOr<std::unique_ptr<RandomAccessFile>> PosixFileSystem::NewRandomAccessFile(
    const std::string& path) {
  const int fd = sys_.Open(path.c_str(), O_RDONLY, 0);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  return std::make_unique<PosixRandomAccessFile>(sys_, path, fd);
}

absl::Status PosixFileSystem::CreateDir(const std::string& path) {
  if (sys_.Mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "mkdir", path);
  }
  return absl::OkStatus();
}

bool PosixFileSystem::FileExists(const std::string& path) {
  const int fd = sys_.Open(path.c_str(), O_RDONLY, 0);
  if (fd < 0) return false;
  sys_.Close(fd);
  return true;
}

absl::StatusOr<std::vector<std::string>> PosixFileSystem::ListDir(const std::string& path) {
  std::vector<std::string> names;
  if (sys_.ListDir(path.c_str(), names) != 0) return ErrnoStatus(errno, "list", path);
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status PosixFileSystem::Remove(const std::string& path) {
  if (sys_.Unlink(path.c_str()) != 0) return ErrnoStatus(errno, "remove", path);
  return SyncDirOf(path);
}

absl::Status PosixFileSystem::Rename(const std::string& from, const std::string& to) {
  if (sys_.Rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus(errno, "rename", from);
  return SyncDirOf(to);
}

absl::Status PosixFileSystem::Truncate(const std::string& path, uint64_t size) {
  const int fd = sys_.Open(path.c_str(), O_WRONLY, 0);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  absl::Status status;
  if (sys_.Ftruncate(fd, static_cast<off_t>(size)) != 0) {
    status = ErrnoStatus(errno, "truncate", path);
  } else if (sys_.Fsync(fd) != 0) {
    status = ErrnoStatus(errno, "fsync", path);
  }
  sys_.Close(fd);
  return status;
}

absl::StatusOr<std::unique_ptr<FileLock>> PosixFileSystem::LockFile(const std::string& path) {
  const int fd = sys_.Open(path.c_str(), O_RDWR | O_CREAT, 0644);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  if (sys_.Flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    sys_.Close(fd);
    if (error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("lock ", path, ": held by another process"));
    }
    return ErrnoStatus(error, "lock", path);
  }
  return std::make_unique<PosixLock>(sys_, fd);
}

}  // namespace netlayer::threaded
