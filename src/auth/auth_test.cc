#include <filesystem>

#include <gtest/gtest.h>

#include "auth/access.h"
#include "auth/crypto.h"
#include "auth/rate_limiter.h"
#include "auth/tokens.h"
#include "model/model.h"

namespace berth::auth {
namespace {

TEST(CryptoTest, PasswordHashVerifies) {
  auto h = HashPassword("correct horse");
  ASSERT_TRUE(h.ok());
  EXPECT_NE(*h, "correct horse");
  EXPECT_TRUE(VerifyPassword(*h, "correct horse"));
  EXPECT_FALSE(VerifyPassword(*h, "correct horsE"));
  EXPECT_FALSE(VerifyPassword("", "x"));
  EXPECT_FALSE(VerifyPassword("garbage", "x"));
  // Salted: the same password hashes differently.
  EXPECT_NE(*h, *HashPassword("correct horse"));
}

TEST(CryptoTest, TokensAreRandomAndHashStable) {
  std::string a = NewTokenSecret(), b = NewTokenSecret();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("bth_", 0), 0u);
  EXPECT_EQ(a.size(), 4u + 43u);
  EXPECT_EQ(HashToken(a), HashToken(a));
  EXPECT_NE(HashToken(a), HashToken(b));
  EXPECT_EQ(HashToken(a).size(), 64u);
  EXPECT_EQ(RandomHex(6).size(), 12u);
  EXPECT_EQ(RandomPassword().size(), 20u);
}

TEST(CryptoTest, HmacSha256MatchesKnownVectors) {
  // RFC 4231 test cases 2 and 6 (a key longer than the block size), and GitHub's documented
  // webhook example.
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(HmacSha256Hex(std::string(131, '\xaa'),
                          "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(HmacSha256Hex("It's a Secret to Everybody", "Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

TEST(CryptoTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
}

TEST(RateLimiterTest, BlocksAfterFailuresAndRecoversAfterWindow) {
  FakeClockForTest clock(FromUnixMillis(1000000));
  LoginRateLimiter rl(clock, 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(rl.RetryAfterSeconds("1.2.3.4", "bob"), 0);
    rl.RecordFailure("1.2.3.4", "bob");
  }
  int wait = rl.RetryAfterSeconds("1.2.3.4", "bob");
  EXPECT_GT(wait, 0);
  EXPECT_LE(wait, 61);
  // Another user from the same address is not blocked yet; the same user elsewhere neither.
  EXPECT_EQ(rl.RetryAfterSeconds("1.2.3.4", "alice"), 0);
  EXPECT_EQ(rl.RetryAfterSeconds("5.6.7.8", "bob"), 0);
  clock.Advance(std::chrono::seconds(61));
  EXPECT_EQ(rl.RetryAfterSeconds("1.2.3.4", "bob"), 0);
}

TEST(RateLimiterTest, SprayingManyUsersFromOneAddressIsLimited) {
  FakeClockForTest clock(FromUnixMillis(1000000));
  LoginRateLimiter rl(clock, 2);
  for (int i = 0; i < 8; ++i) rl.RecordFailure("9.9.9.9", "user" + std::to_string(i));
  EXPECT_GT(rl.RetryAfterSeconds("9.9.9.9", "fresh"), 0);
}

TEST(RateLimiterTest, SuccessClearsTheUsersFailures) {
  FakeClockForTest clock(FromUnixMillis(1000000));
  LoginRateLimiter rl(clock, 2);
  rl.RecordFailure("a", "bob");
  rl.RecordSuccess("a", "bob");
  rl.RecordFailure("a", "bob");
  EXPECT_EQ(rl.RetryAfterSeconds("a", "bob"), 0);
}

TEST(RateLimiterTest, OneAccountFromManyAddressesIsLimited) {
  FakeClockForTest clock(FromUnixMillis(1000000));
  LoginRateLimiter rl(clock, 2);
  // One failure from each of 8 addresses: no address nor address+user is over its limit, but
  // the account is (4 x 2).
  for (int i = 0; i < 8; ++i) {
    std::string addr = "127.0.0." + std::to_string(i + 2);
    EXPECT_EQ(rl.RetryAfterSeconds(addr, "bob"), 0) << addr;
    rl.RecordFailure(addr, "bob");
  }
  EXPECT_GT(rl.RetryAfterSeconds("127.0.0.100", "bob"), 0);
  EXPECT_EQ(rl.RetryAfterSeconds("127.0.0.100", "alice"), 0) << "other accounts are not held";
  clock.Advance(std::chrono::seconds(61));
  EXPECT_EQ(rl.RetryAfterSeconds("127.0.0.100", "bob"), 0);
}

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("berth-access-" + RandomHex(6));
    std::filesystem::create_directories(dir_);
    store_ = std::move(OpenSqliteStore((dir_ / "db").string(), {false, 1000})).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Put(const char* kind, const std::string& scope, const std::string& name,
           const std::string& body, const std::string& index = "") {
    WriteBatch b;
    b.ops.push_back(Op{OpType::kCreate, Object{kind, scope, name, body, index}});
    ASSERT_TRUE(store_->Commit(b).ok());
  }
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(AccessTest, AuthenticatesTokensAndChecksRoles) {
  FakeClockForTest clock(FromUnixMillis(1000000));
  Access access(*store_, clock);
  std::string secret = NewTokenSecret();
  Put("user", "", "bob", R"({"name":"bob","admin":false,"disabled":false})");
  Put("token", "bob", "t1", R"({"id":"t1","name":"x","user":"bob","expires_at_ms":2000000})",
      HashToken(secret));
  Put("team", "", "t", R"({"name":"t"})");
  Put("team", "", "other", R"({"name":"other"})");
  Put("member", "t", "bob", R"({"user":"bob","role":"developer"})");

  EXPECT_EQ(access.Authenticate("").status().code(), Code::kUnauthenticated);
  EXPECT_EQ(access.Authenticate("Basic abc").status().code(), Code::kUnauthenticated);
  EXPECT_EQ(access.Authenticate("Bearer bth_wrong").status().code(), Code::kUnauthenticated);
  auto who = access.Authenticate("Bearer " + secret);
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_EQ(who->user, "bob");
  EXPECT_FALSE(who->admin);

  EXPECT_EQ(*access.TeamRole(*who, "t"), model::Role::kDeveloper);
  EXPECT_TRUE(access.Require(*who, "t", model::Role::kDeveloper, "create apps").ok());
  Status denied = access.Require(*who, "t", model::Role::kAdmin, "add members").status();
  EXPECT_EQ(denied.code(), Code::kPermissionDenied);
  EXPECT_NE(denied.message().find("developer"), std::string::npos);
  // Not a member: the team looks like it does not exist.
  EXPECT_EQ(access.TeamRole(*who, "other").status().code(), Code::kNotFound);
  EXPECT_EQ(access.TeamRole(*who, "missing").status().code(), Code::kNotFound);
  Principal admin{"root", true, ""};
  EXPECT_EQ(*access.TeamRole(admin, "other"), model::Role::kOwner);

  clock.Advance(std::chrono::seconds(2000));
  Status expired = access.Authenticate("Bearer " + secret).status();
  EXPECT_EQ(expired.code(), Code::kUnauthenticated);
  EXPECT_NE(expired.message().find("expired"), std::string::npos);
}

TEST_F(AccessTest, CachedAnswersFollowTheStore) {
  FakeClockForTest clock(FromUnixMillis(1000000));
  Access access(*store_, clock);
  std::string secret = NewTokenSecret();
  Put("user", "", "bob", R"({"name":"bob"})");
  Put("token", "bob", "t1", R"({"id":"t1","name":"x","user":"bob","last_used_at_ms":1000000})",
      HashToken(secret));
  Put("team", "", "t", R"({"name":"t"})");
  Put("member", "t", "bob", R"({"user":"bob","role":"developer"})");
  auto who = access.Authenticate("Bearer " + secret);
  ASSERT_TRUE(who.ok());
  ASSERT_EQ(*access.TeamRole(*who, "t"), model::Role::kDeveloper);
  // Unrelated writes keep the cache; a role change is seen at once.
  Put("app", "t", "shop", R"({"name":"shop"})");
  EXPECT_EQ(*access.TeamRole(*who, "t"), model::Role::kDeveloper);
  WriteBatch demote;
  demote.ops.push_back(Op{OpType::kUpdate, Object{"member", "t", "bob", R"({"user":"bob","role":"viewer"})"}});
  ASSERT_TRUE(store_->Commit(demote).ok());
  EXPECT_EQ(*access.TeamRole(*who, "t"), model::Role::kViewer);
  // Revoking the token takes effect with the next request.
  WriteBatch revoke;
  revoke.ops.push_back(Op{OpType::kDelete, Object{"token", "bob", "t1"}});
  ASSERT_TRUE(store_->Commit(revoke).ok());
  EXPECT_EQ(access.Authenticate("Bearer " + secret).status().code(), Code::kUnauthenticated);
}

TEST_F(AccessTest, LastUsedIsRecordedAtMinuteResolution) {
  FakeClockForTest clock(FromUnixMillis(100000000));
  Access access(*store_, clock);
  std::string secret = NewTokenSecret();
  Put("user", "", "bob", R"({"name":"bob"})");
  Put("token", "bob", "t1", R"({"id":"t1","name":"x","user":"bob"})", HashToken(secret));
  ASSERT_TRUE(access.Authenticate("Bearer " + secret).ok());
  int64_t head = store_->Head();
  Json stored = Json::parse(store_->Get("token", "bob", "t1")->body);
  EXPECT_EQ(stored["last_used_at_ms"], 100000000);
  clock.Advance(std::chrono::seconds(60));
  ASSERT_TRUE(access.Authenticate("Bearer " + secret).ok());
  EXPECT_EQ(store_->Head(), head);  // no write for every request
  clock.Advance(std::chrono::minutes(10));
  ASSERT_TRUE(access.Authenticate("Bearer " + secret).ok());
  EXPECT_GT(store_->Head(), head);
}

TEST_F(AccessTest, DisabledUsersAreRejected) {
  FakeClockForTest clock(FromUnixMillis(1000000));
  Access access(*store_, clock);
  std::string secret = NewTokenSecret();
  Put("user", "", "eve", R"({"name":"eve","disabled":true})");
  Put("token", "eve", "t2", R"({"id":"t2","name":"x","user":"eve","expires_at_ms":0})",
      HashToken(secret));
  Status s = access.Authenticate("Bearer " + secret).status();
  EXPECT_EQ(s.code(), Code::kUnauthenticated);
  EXPECT_NE(s.message().find("disabled"), std::string::npos);
}

TEST_F(AccessTest, ServiceAccountsAreMarked) {
  FakeClockForTest clock(FromUnixMillis(1000000));
  Access access(*store_, clock);
  std::string secret = NewTokenSecret();
  Put("user", "", "berth-gateway", R"({"name":"berth-gateway","service":true})");
  Put("token", model::TokenScope("berth-gateway"), "t1",
      R"({"id":"t1","name":"gateway","user":"berth-gateway"})", HashToken(secret));
  auto who = access.Authenticate("Bearer " + secret);
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_TRUE(who->service);
  EXPECT_FALSE(who->admin);
}

TEST_F(AccessTest, ExpiredTokensAreSweptAndOldScopesMoved) {
  Put("user", "", "bob", R"({"name":"bob"})");
  Put("user", "", "eve", R"({"name":"eve"})");
  // bob's tokens as an older version stored them: under the bare user name.
  std::string kept = NewTokenSecret();
  Put("token", "bob", "t1", R"({"id":"t1","name":"x","user":"bob","expires_at_ms":0})",
      HashToken(kept));
  Put("token", "bob", "t2", R"({"id":"t2","name":"x","user":"bob","expires_at_ms":5000})", "h2");
  // A team named like the user, with an app: deleting it must leave bob's tokens alone.
  Put("team", "", "bob", R"({"name":"bob"})");
  Put("app", "bob", "shop", R"({"name":"shop"})");
  auto moved = MigrateTokenScopes(*store_);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, 2);
  EXPECT_EQ(*MigrateTokenScopes(*store_), 0) << "nothing left to move";
  auto found = store_->FindByIndex("token", HashToken(kept));
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front().scope, "user:bob");
  WriteBatch del;
  del.ops.push_back(Op{OpType::kDeleteTree, Object{"", "bob", ""}});
  ASSERT_TRUE(store_->Commit(del).ok());
  EXPECT_EQ(*store_->Count("token", "user:bob"), 2) << "the team's delete kept the user's tokens";
  EXPECT_EQ(*store_->Count("app", "bob"), 0);

  auto swept = SweepExpiredTokens(*store_, 4999);
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 0);
  swept = SweepExpiredTokens(*store_, 5000);
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 1);
  EXPECT_FALSE(store_->Get("token", "user:bob", "t2").ok());
  EXPECT_TRUE(store_->Get("token", "user:bob", "t1").ok()) << "tokens that never expire stay";

  // Revoking all of a user's tokens is one op, however many there are.
  for (int i = 0; i < 1200; i += 400) {
    WriteBatch many;
    for (int j = i; j < i + 400; ++j) {
      many.ops.push_back(Op{OpType::kCreate, Object{"token", "user:eve", "m" + std::to_string(j),
                                                    R"({"user":"eve"})"}});
    }
    ASSERT_TRUE(store_->Commit(many).ok());
  }
  WriteBatch revoke;
  revoke.ops.push_back(RevokeAllTokensOp("eve"));
  ASSERT_TRUE(store_->Commit(revoke).ok());
  EXPECT_EQ(*store_->Count("token", "user:eve"), 0);
  EXPECT_EQ(*store_->Count("token", "user:bob"), 1);
}

}  // namespace
}  // namespace berth::auth
