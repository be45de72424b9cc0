#include "common/file_system.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

// The same contract checks run against both implementations.
class FileSystemContractTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      fs_ = LocalFileSystem();
      const char* tmp = std::getenv("TEST_TMPDIR");
      root_ = absl::StrCat(tmp ? tmp : "/tmp", "/fs_test_", ::getpid(), "_",
                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    } else {
      mem_ = std::make_unique<InMemoryFileSystem>();
      fs_ = mem_.get();
      root_ = "/mem";
    }
    ASSERT_TRUE(fs_->CreateDirectories(root_).ok());
  }
  std::string P(const std::string& name) { return JoinPath(root_, name); }

  std::unique_ptr<InMemoryFileSystem> mem_;
  FileSystem* fs_ = nullptr;
  std::string root_;
};

TEST_P(FileSystemContractTest, WriteReadReplace) {
  ASSERT_TRUE(fs_->WriteFileAtomic(P("a.txt"), "hello").ok());
  EXPECT_EQ(*fs_->ReadFile(P("a.txt")), "hello");
  ASSERT_TRUE(fs_->WriteFileAtomic(P("a.txt"), "world!").ok());
  EXPECT_EQ(*fs_->ReadFile(P("a.txt")), "world!");
  EXPECT_EQ(*fs_->FileSize(P("a.txt")), 6u);
  EXPECT_TRUE(fs_->Exists(P("a.txt")));
  EXPECT_FALSE(fs_->IsDirectory(P("a.txt")));
  // No temp files left behind.
  EXPECT_EQ(*fs_->ListDirectory(root_), std::vector<std::string>{"a.txt"});
}

TEST_P(FileSystemContractTest, BinaryContentRoundTrips) {
  std::string data("\0\x01\xff\n\r", 5);
  data += std::string(200000, 'x');
  ASSERT_TRUE(fs_->WriteFileAtomic(P("bin"), data).ok());
  EXPECT_EQ(*fs_->ReadFile(P("bin")), data);
}

TEST_P(FileSystemContractTest, ErrorsHaveSpecificCodes) {
  EXPECT_EQ(fs_->ReadFile(P("missing")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_->WriteFileAtomic(P("nodir/x"), "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_->DeleteFile(P("missing")).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_->ReadFile(root_).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(fs_->WriteFileAtomic(P("big"), std::string(100, 'x')).ok());
  auto r = fs_->ReadFile(P("big"), 10);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("big"), std::string::npos);
}

TEST_P(FileSystemContractTest, DirectoriesListRenameDelete) {
  ASSERT_TRUE(fs_->CreateDirectories(P("x/y/z")).ok());
  ASSERT_TRUE(fs_->CreateDirectories(P("x/y/z")).ok());  // idempotent
  EXPECT_TRUE(fs_->IsDirectory(P("x/y")));
  ASSERT_TRUE(fs_->WriteFileAtomic(P("x/b"), "1").ok());
  ASSERT_TRUE(fs_->AppendToFile(P("x/b"), "23").ok());
  EXPECT_EQ(*fs_->ReadFile(P("x/b")), "123");
  EXPECT_EQ(*fs_->ListDirectory(P("x")), (std::vector<std::string>{"b", "y"}));
  ASSERT_TRUE(fs_->Rename(P("x/b"), P("x/y/c")).ok());
  EXPECT_FALSE(fs_->Exists(P("x/b")));
  EXPECT_EQ(*fs_->ReadFile(P("x/y/c")), "123");
  ASSERT_TRUE(fs_->DeleteFile(P("x/y/c")).ok());
  EXPECT_FALSE(fs_->Exists(P("x/y/c")));
  ASSERT_TRUE(fs_->WriteFileAtomic(P("file"), "f").ok());
  EXPECT_EQ(fs_->CreateDirectories(P("file")).code(), absl::StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(Impls, FileSystemContractTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Posix" : "InMemory"; });

TEST(LocalFileSystemTest, AtomicWriteAppliesMode) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(tmp ? tmp : "/tmp", "/secret_", ::getpid());
  ASSERT_TRUE(LocalFileSystem()->WriteFileAtomic(path, "s3cr3t", 0600).ok());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(JoinPathTest, Joins) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "/b"), "a/b");
  EXPECT_EQ(JoinPath("/", "b"), "/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
  EXPECT_EQ(JoinPath("a", ""), "a");
}

}  // namespace
}  // namespace tessera
