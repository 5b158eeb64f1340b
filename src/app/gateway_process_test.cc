#include "app/gateway_process.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include "auth/crypto.h"
#include "core/log.h"
#include "model/model.h"

namespace berth {
namespace {

namespace fs = std::filesystem;

class GatewayCredentialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("berth-gwcred-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    StoreOptions so;
    so.sync_full = false;
    auto s = OpenSqliteStore((dir_ / "berth.db").string(), so);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  void PutUser(const Json& body) {
    WriteBatch b;
    Op op;
    op.type = OpType::kCreate;
    op.object = Object{model::kUser, "", kGatewayUser, body.dump()};
    b.ops.push_back(op);
    ASSERT_TRUE(store_->Commit(b).ok());
  }
  Json User() {
    auto o = store_->Get(model::kUser, "", kGatewayUser);
    EXPECT_TRUE(o.ok());
    return o.ok() ? Json::parse(o->body) : Json::object();
  }
  Status Ensure() { return EnsureGatewayCredential(*store_, dir_.string(), *Logger("app")); }

  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(GatewayCredentialTest, CreatesAServiceAccountWithAToken) {
  ASSERT_TRUE(Ensure().ok());
  Json u = User();
  EXPECT_TRUE(u.value("service", false));
  EXPECT_FALSE(u.value("admin", true)) << "a service account, not a platform administrator";
  EXPECT_EQ(u.value("password_hash", "x"), "");
  EXPECT_TRUE(fs::exists(dir_ / "gateway" / "token"));
  int64_t head = store_->Head();
  ASSERT_TRUE(Ensure().ok());
  EXPECT_EQ(store_->Head(), head) << "a second start changes nothing";
}

TEST_F(GatewayCredentialTest, MarksTheUserOfAnOlderVersionAsAServiceAccount) {
  ASSERT_TRUE(Ensure().ok());
  Json u = User();
  u.erase("service");  // as an older version stored it: a platform administrator
  u["admin"] = true;
  WriteBatch b;
  Op op;
  op.type = OpType::kUpdate;
  op.object = Object{model::kUser, "", kGatewayUser, u.dump()};
  b.ops.push_back(op);
  ASSERT_TRUE(store_->Commit(b).ok());
  std::ifstream in(dir_ / "gateway" / "token");
  std::string token;
  in >> token;
  ASSERT_TRUE(Ensure().ok());
  EXPECT_TRUE(User().value("service", false));
  EXPECT_FALSE(User().value("admin", true)) << "no longer a platform administrator";
  std::ifstream again(dir_ / "gateway" / "token");
  std::string kept;
  again >> kept;
  EXPECT_EQ(kept, token) << "the valid token is kept";
}

TEST_F(GatewayCredentialTest, RefusesAPersonsUserOfThatName) {
  PutUser({{"name", kGatewayUser}, {"admin", true}, {"disabled", false},
           {"password_hash", "$argon2id$v=19$something"}});
  Status s = Ensure();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--gateway off"), std::string::npos) << s.message();
  EXPECT_FALSE(User().value("service", false));
}

std::string ReadToken(const fs::path& p) {
  std::ifstream in(p);
  std::string t;
  in >> t;
  return t;
}

TEST_F(GatewayCredentialTest, RotationWritesANewTokenAndRevokesTheOldOnes) {
  ASSERT_TRUE(Ensure().ok());
  std::string before = ReadToken(dir_ / "gateway" / "token");
  auto old = store_->FindByIndex(model::kToken, auth::HashToken(before));
  ASSERT_TRUE(old.ok());
  ASSERT_EQ(old->size(), 1u);
  auto id = RotateGatewayCredential(*store_, dir_.string(), "admin");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  std::string after = ReadToken(dir_ / "gateway" / "token");
  EXPECT_NE(after, before);
  EXPECT_EQ(fs::status(dir_ / "gateway" / "token").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  auto gone = store_->FindByIndex(model::kToken, auth::HashToken(before));
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->empty()) << "the old token is revoked";
  auto now = store_->FindByIndex(model::kToken, auth::HashToken(after));
  ASSERT_TRUE(now.ok());
  ASSERT_EQ(now->size(), 1u);
  EXPECT_EQ(now->front().name, *id);
  EXPECT_EQ(now->front().scope, model::TokenScope(kGatewayUser));
  // A start after the rotation keeps the rotated token.
  int64_t head = store_->Head();
  ASSERT_TRUE(Ensure().ok());
  EXPECT_EQ(store_->Head(), head);
}

TEST_F(GatewayCredentialTest, RotationWithoutAGatewayIsRefused) {
  auto id = RotateGatewayCredential(*store_, dir_.string(), "admin");
  EXPECT_FALSE(id.ok());
  EXPECT_EQ(id.status().reason(), "failed_precondition");
}

using std::chrono::milliseconds;

// Issue 24: five kills 3 s apart pushed the restart delay to 16.8 s although each gateway had
// served for seconds.
TEST(RestartBackoffTest, AGatewayThatServedIsStartedAgainAtOnce) {
  RestartBackoff b;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(b.OnExit(milliseconds(3000)).count(), 0) << "exit " << i;
  EXPECT_EQ(b.OnExit(milliseconds(1000)).count(), 0);
}

TEST(RestartBackoffTest, DyingInItsFirstSecondAgainAndAgainBacksOff) {
  RestartBackoff b;
  std::vector<int64_t> got;
  for (int i = 0; i < 10; ++i) got.push_back(b.OnExit(milliseconds(100)).count());
  EXPECT_EQ(got, (std::vector<int64_t>{250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000,
                                       30000}));
}

TEST(RestartBackoffTest, ARunOfASecondEndsTheBackOff) {
  RestartBackoff b;
  for (int i = 0; i < 6; ++i) b.OnExit(milliseconds(10));
  EXPECT_EQ(b.OnExit(milliseconds(1500)).count(), 0);
  EXPECT_EQ(b.OnExit(milliseconds(10)).count(), 250) << "a new crash loop starts from the bottom";
}

}  // namespace
}  // namespace berth
