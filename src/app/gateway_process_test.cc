#include "app/gateway_process.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

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
  EXPECT_TRUE(u.value("admin", false));
  EXPECT_EQ(u.value("password_hash", "x"), "");
  EXPECT_TRUE(fs::exists(dir_ / "gateway" / "token"));
  int64_t head = store_->Head();
  ASSERT_TRUE(Ensure().ok());
  EXPECT_EQ(store_->Head(), head) << "a second start changes nothing";
}

TEST_F(GatewayCredentialTest, MarksTheUserOfAnOlderVersionAsAServiceAccount) {
  ASSERT_TRUE(Ensure().ok());
  Json u = User();
  u.erase("service");  // as an older version stored it
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

}  // namespace
}  // namespace berth
