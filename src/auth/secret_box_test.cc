#include "auth/secret_box.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace berth::auth {
namespace {

namespace fs = std::filesystem;

class SecretBoxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("berth-secret-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(SecretBoxTest, CreatesKeyOnceWithPrivateMode) {
  std::string path = (dir_ / "secret.key").string();
  auto a = SecretBox::LoadOrCreate(path);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  // The second load reads the same key: what one sealed, the other opens.
  auto b = SecretBox::LoadOrCreate(path);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  std::string sealed = a->Seal("-----BEGIN PRIVATE KEY-----\nabc\n");
  auto opened = b->Open(sealed);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, "-----BEGIN PRIVATE KEY-----\nabc\n");
}

TEST_F(SecretBoxTest, SealedTextHidesThePlaintextAndUsesFreshNonces) {
  auto box = SecretBox::FromKey(std::string(32, 'k'));
  ASSERT_TRUE(box.ok());
  std::string s1 = box->Seal("PRIVATE KEY material");
  std::string s2 = box->Seal("PRIVATE KEY material");
  EXPECT_NE(s1, s2);
  EXPECT_EQ(s1.find("PRIVATE"), std::string::npos);
  EXPECT_EQ(s1.rfind("sb1:", 0), 0u);
  EXPECT_EQ(*box->Open(s1), "PRIVATE KEY material");
  EXPECT_EQ(*box->Open(box->Seal("")), "");
}

TEST_F(SecretBoxTest, RejectsTamperingAndOtherKeys) {
  auto box = SecretBox::FromKey(std::string(32, 'k'));
  auto other = SecretBox::FromKey(std::string(32, 'x'));
  ASSERT_TRUE(box.ok() && other.ok());
  std::string s = box->Seal("secret");
  EXPECT_FALSE(other->Open(s).ok());
  std::string flipped = s;
  flipped[10] = flipped[10] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(box->Open(flipped).ok());
  EXPECT_FALSE(box->Open("").ok());
  EXPECT_FALSE(box->Open("sb1:").ok());
  EXPECT_FALSE(box->Open("sb1:!!!").ok());
  EXPECT_FALSE(box->Open("plain text").ok());
  EXPECT_FALSE(SecretBox::FromKey("short").ok());
}

TEST_F(SecretBoxTest, RefusesDamagedOrExposedKeyFiles) {
  std::string path = (dir_ / "secret.key").string();
  {
    std::ofstream f(path);
    f << "too short";
  }
  ::chmod(path.c_str(), 0600);
  auto r = SecretBox::LoadOrCreate(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a berth secret key"), std::string::npos);
  {
    std::ofstream f(path, std::ios::trunc);
    f << std::string(32, 'k');
  }
  ::chmod(path.c_str(), 0644);
  r = SecretBox::LoadOrCreate(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("chmod 600"), std::string::npos);
}

}  // namespace
}  // namespace berth::auth
