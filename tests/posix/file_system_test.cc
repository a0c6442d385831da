// The posix file system (threaded/file_system.h) on real files in a temporary directory, with
// faults injected through FaultFileSys: EIO on fdatasync, ENOSPC, short writes.
#include "netlayer/threaded/file_system.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "netlayer/threaded/threaded.h"

namespace netlayer::threaded {
namespace {

using Op = FaultFileSys::Op;

class FileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/netlayer-fs-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

TEST_F(FileSystemTest, AppendSyncReadTruncateRenameRemoveList) {
  PosixFileSystem fs;
  auto file = fs.NewAppendableFile(Path("log"));
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Append("hello ").ok());
  ASSERT_TRUE((*file)->Append("world").ok());
  EXPECT_EQ((*file)->Size(), 11u);
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(*ReadFileToString(fs, Path("log")), "hello world");

  // Reopened: appends continue at the end.
  auto again = fs.NewAppendableFile(Path("log"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->Size(), 11u);
  ASSERT_TRUE((*again)->Append("!").ok());
  again->reset();
  auto reader = fs.NewRandomAccessFile(Path("log"));
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(*(*reader)->Read(6, 100), "world!");
  EXPECT_EQ(*(*reader)->Size(), 12u);
  EXPECT_EQ(*(*reader)->Read(50, 10), "");

  ASSERT_TRUE(fs.Truncate(Path("log"), 5).ok());
  EXPECT_EQ(*ReadFileToString(fs, Path("log")), "hello");
  ASSERT_TRUE(fs.Rename(Path("log"), Path("log2")).ok());
  EXPECT_FALSE(fs.FileExists(Path("log")));
  EXPECT_TRUE(fs.FileExists(Path("log2")));
  ASSERT_TRUE(fs.CreateDir(Path("sub")).ok());
  ASSERT_TRUE(fs.CreateDir(Path("sub")).ok());  // exists: fine
  EXPECT_EQ(*fs.ListDir(dir_), (std::vector<std::string>{"log2", "sub"}));
  ASSERT_TRUE(fs.Remove(Path("log2")).ok());
  EXPECT_EQ(fs.Remove(Path("log2")).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs.NewRandomAccessFile(Path("none")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(FileSystemTest, SyncAsyncRunsOnceOffTheCallerThread) {
  PosixFileSystem fs;
  auto file = fs.NewAppendableFile(Path("log"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("abc").ok());
  ThreadNotification done;
  absl::Status result = absl::UnknownError("not run");
  (*file)->SyncAsync([&](absl::Status s) {
    result = s;
    done.Notify();
  });
  ASSERT_TRUE(done.WaitUntil(absl::Now() + absl::Seconds(30)));
  EXPECT_TRUE(result.ok()) << result;
  // A file closed with a sync pending: the sync still runs its callback.
  ThreadNotification late;
  (*file)->SyncAsync([&](absl::Status) { late.Notify(); });
  file->reset();
  EXPECT_TRUE(late.WaitUntil(absl::Now() + absl::Seconds(30)));
}

TEST_F(FileSystemTest, EioOnFdatasyncIsDataLossAndOnlyThatSync) {
  FaultFileSys sys;
  PosixFileSystem fs(sys);
  auto file = fs.NewAppendableFile(Path("log"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("abc").ok());
  sys.Inject(Op::kFdatasync, {EIO});
  const absl::Status s = (*file)->Sync();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("fdatasync"), std::string::npos) << s;
  EXPECT_TRUE((*file)->Sync().ok());
  // The asynchronous path reports it the same way.
  sys.Inject(Op::kFdatasync, {EIO});
  ThreadNotification done;
  absl::Status result;
  (*file)->SyncAsync([&](absl::Status st) {
    result = st;
    done.Notify();
  });
  ASSERT_TRUE(done.WaitUntil(absl::Now() + absl::Seconds(30)));
  EXPECT_EQ(result.code(), absl::StatusCode::kDataLoss);
}

TEST_F(FileSystemTest, ShortWritesContinueAndEnospcFails) {
  FaultFileSys sys;
  PosixFileSystem fs(sys);
  auto file = fs.NewAppendableFile(Path("log"));
  ASSERT_TRUE(file.ok());
  sys.Inject(Op::kWrite, {0, 2, 3});  // three short writes of 2 bytes
  ASSERT_TRUE((*file)->Append("0123456789").ok());
  EXPECT_EQ(*ReadFileToString(fs, Path("log")), "0123456789");
  // A short write, then ENOSPC: part of the data is in the file, and the append fails.
  sys.Inject(Op::kWrite, {0, 3, 1});
  sys.Inject(Op::kWrite, {ENOSPC, 0, 1});
  const absl::Status s = (*file)->Append("abcdefgh");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(*ReadFileToString(fs, Path("log")), "0123456789abc");
  EXPECT_EQ((*file)->Size(), 13u);
  sys.Inject(Op::kWrite, {EINTR, 0, 1});  // retried
  EXPECT_TRUE((*file)->Append("d").ok());
}

TEST_F(FileSystemTest, LockIsExclusiveUntilReleased) {
  PosixFileSystem fs;
  auto lock = fs.LockFile(Path("LOCK"));
  ASSERT_TRUE(lock.ok()) << lock.status();
  auto second = fs.LockFile(Path("LOCK"));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  lock->reset();
  EXPECT_TRUE(fs.LockFile(Path("LOCK")).ok());
}

TEST(NoFileSystemTest, FailsUnimplemented) {
  EXPECT_EQ(NoFileSystem().NewAppendableFile("/x").status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_FALSE(NoFileSystem().FileExists("/"));
}

}  // namespace
}  // namespace netlayer::threaded
