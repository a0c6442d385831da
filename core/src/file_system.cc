#include "netlayer/core/file_system.h"

#include "absl/strings/str_cat.h"

namespace netlayer {
namespace {

absl::Status NoFiles(std::string_view op, const std::string& path) {
  return absl::UnimplementedError(
      absl::StrCat(std::string(op), " ", path, ": this Env has no file system"));
}

class NoFs final : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override {
    return NoFiles("open", path);
  }
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    return NoFiles("open", path);
  }
  absl::Status CreateDir(const std::string& path) override { return NoFiles("mkdir", path); }
  bool FileExists(const std::string&) override { return false; }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override {
    return NoFiles("list", path);
  }
  absl::Status Remove(const std::string& path) override { return NoFiles("remove", path); }
  absl::Status Rename(const std::string& from, const std::string&) override {
    return NoFiles("rename", from);
  }
  absl::Status Truncate(const std::string& path, uint64_t) override {
    return NoFiles("truncate", path);
  }
  absl::StatusOr<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    return NoFiles("lock", path);
  }
};

}  // namespace

FileSystem& NoFileSystem() {
  static NoFs* fs = new NoFs;
  return *fs;
}

absl::StatusOr<std::string> ReadFileToString(FileSystem& fs, const std::string& path) {
  auto file = fs.NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  std::string out;
  constexpr size_t kChunk = size_t{1} << 20;
  while (true) {
    auto chunk = (*file)->Read(out.size(), kChunk);
    if (!chunk.ok()) return chunk.status();
    if (chunk->empty()) return out;
    out += *chunk;
  }
}

}  // namespace netlayer
