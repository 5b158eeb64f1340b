// Domain ownership (routing/domains.h) over a real SQLite store: first claim wins, wildcards
// hold everything below them and are held off by anything below them, a claim goes with the
// team's last rule on it, an assignment stays, and a team's delete takes all of its domains.
#include "routing/domains.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "model/model.h"

namespace berth::routing {
namespace {

namespace fs = std::filesystem;

class DomainsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("berth-domains-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    StoreOptions so;
    so.sync_full = false;
    auto s = OpenSqliteStore((dir_ / "berth.db").string(), so);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    for (const char* team : {"a", "b"}) Put(model::kApp, team, "app", {{"name", "app"}});
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  void Put(const char* kind, const std::string& scope, const std::string& name, const Json& body) {
    WriteBatch b;
    b.ops.push_back(Op{OpType::kUpsert, Object{kind, scope, name, body.dump()}});
    ASSERT_TRUE(store_->Commit(b).ok());
  }
  // A rule of `team` on `domain`, committed with its domain claim as the API does; the claim's
  // status.
  Status Rule(const std::string& team, const std::string& name, const std::string& domain) {
    auto ops = ClaimDomainOps(*store_, team, domain, "u");
    if (!ops.ok()) return ops.status();
    auto r = model::ParseHttpRule(
        {{"name", name}, {"domain", domain}, {"backends", {{{"component", "web"}, {"port", 80}}}}});
    EXPECT_TRUE(r.ok());
    WriteBatch b;
    b.ops = std::move(*ops);
    b.ops.push_back(Op{OpType::kCreate, Object{model::kHttpRule, team + "/app", name,
                                               model::ToJson(*r).dump()}});
    return store_->Commit(b).status();
  }
  Status DeleteRule(const std::string& team, const std::string& name) {
    auto ops = ReleaseDomainOps(*store_, team, {team + "/app/" + name});
    if (!ops.ok()) return ops.status();
    WriteBatch b;
    b.ops = std::move(*ops);
    b.ops.push_back(Op{OpType::kDelete, Object{model::kHttpRule, team + "/app", name}});
    return store_->Commit(b).status();
  }
  std::string Owner(const std::string& domain) {
    auto d = GetDomainOwner(*store_, domain);
    return d.ok() ? d->team : "";
  }
  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(DomainsTest, TheFirstTeamHoldsADomainWithEveryPath) {
  ASSERT_TRUE(Rule("a", "r1", "shop.example.com").ok());
  EXPECT_EQ(Owner("shop.example.com"), "a");
  Status taken = Rule("b", "r1", "shop.example.com");
  EXPECT_EQ(taken.reason(), "domain_taken");
  EXPECT_EQ(taken.field(), "domain");
  EXPECT_EQ(taken.message().find("\"a\""), std::string::npos) << "the holder is not named";
  ASSERT_TRUE(Rule("a", "r2", "shop.example.com").ok()) << "the same team adds rules freely";
}

TEST_F(DomainsTest, WildcardsHoldBothWays) {
  ASSERT_TRUE(Rule("a", "w", "*.wild.test").ok());
  for (const char* d : {"x.wild.test", "a.b.wild.test", "*.sub.wild.test"}) {
    EXPECT_EQ(Rule("b", "r", d).reason(), "domain_taken") << d;
  }
  EXPECT_TRUE(Rule("b", "apex", "wild.test").ok()) << "the apex is not below the wildcard";
  ASSERT_TRUE(Rule("a", "x", "x.other.test").ok());
  EXPECT_EQ(Rule("b", "w", "*.other.test").reason(), "domain_taken");
  EXPECT_EQ(Rule("b", "w", "*.test").reason(), "domain_taken");
  EXPECT_TRUE(Rule("a", "w2", "*.other.test").ok()) << "a team's own names do not hold it off";
}

TEST_F(DomainsTest, AClaimGoesWithTheLastRuleAnAssignmentStays) {
  ASSERT_TRUE(Rule("a", "r1", "shop.example.com").ok());
  ASSERT_TRUE(Rule("a", "r2", "shop.example.com").ok());
  ASSERT_TRUE(DeleteRule("a", "r1").ok());
  EXPECT_EQ(Owner("shop.example.com"), "a") << "r2 still routes it";
  ASSERT_TRUE(DeleteRule("a", "r2").ok());
  EXPECT_EQ(Owner("shop.example.com"), "");
  EXPECT_TRUE(Rule("b", "r1", "shop.example.com").ok());

  Put(model::kDomain, "", "kept.example.com", {{"team", "a"}, {"assigned", true}, {"by", "admin"}});
  EXPECT_EQ(Rule("b", "k", "kept.example.com").reason(), "domain_taken");
  ASSERT_TRUE(Rule("a", "k", "kept.example.com").ok());
  ASSERT_TRUE(DeleteRule("a", "k").ok());
  EXPECT_EQ(Owner("kept.example.com"), "a") << "assigned: kept without rules";

  auto ops = TeamDomainOps(*store_, "a");
  ASSERT_TRUE(ops.ok());
  WriteBatch b;
  b.ops = std::move(*ops);
  ASSERT_TRUE(store_->Commit(b).ok());
  EXPECT_EQ(Owner("kept.example.com"), "");
  EXPECT_EQ(Owner("shop.example.com"), "b") << "other teams' domains stay";
}

TEST_F(DomainsTest, RacingTeamsCannotBothWin) {
  // Both read "nobody holds it", then commit: the second create fails as a whole.
  auto a = ClaimDomainOps(*store_, "a", "race.test", "u");
  auto b = ClaimDomainOps(*store_, "b", "race.test", "u");
  ASSERT_TRUE(a.ok() && b.ok());
  WriteBatch wa, wb;
  wa.ops = *a;
  wb.ops = *b;
  EXPECT_TRUE(store_->Commit(wa).ok());
  EXPECT_FALSE(store_->Commit(wb).ok());
  EXPECT_EQ(Owner("race.test"), "a");
}

TEST_F(DomainsTest, BackfillGivesRoutedDomainsTheirTeam) {
  auto r = model::ParseHttpRule(
      {{"name", "old"}, {"domain", "old.test"}, {"backends", {{{"component", "web"}, {"port", 80}}}}});
  ASSERT_TRUE(r.ok());
  Put(model::kTeam, "", "a", {{"name", "a"}});
  Put(model::kHttpRule, "a/app", "old", model::ToJson(*r));
  auto n = BackfillDomainOwners(*store_);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(Owner("old.test"), "a");
  EXPECT_EQ(*BackfillDomainOwners(*store_), 0);
}

}  // namespace
}  // namespace berth::routing
