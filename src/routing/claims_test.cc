#include "routing/claims.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <gtest/gtest.h>

#include "model/model.h"

namespace berth::routing {
namespace {

namespace fs = std::filesystem;

class ClaimsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("berth-claims-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    StoreOptions so;
    so.sync_full = false;
    auto s = OpenSqliteStore((dir_ / "berth.db").string(), so);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    for (const char* app : {"shop", "blog"}) {
      Put(model::kApp, "default", app, {{"name", app}});
    }
    Put(model::kApp, "acme", "crm", {{"name", "crm"}});
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  void Put(const char* kind, const std::string& scope, const std::string& name, const Json& body) {
    WriteBatch b;
    Op op;
    op.type = OpType::kUpsert;
    op.object = Object{kind, scope, name, body.dump()};
    b.ops.push_back(op);
    auto r = store_->Commit(b);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  // A rule and its claim, as the API writes them.
  void HttpRule(const std::string& scope, const std::string& name, const std::string& domain,
                Json backends) {
    auto r = model::ParseHttpRule({{"name", name}, {"domain", domain}, {"backends", backends}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    Put(model::kHttpRule, scope, name, model::ToJson(*r));
    Put(model::kGatewayClaim, "", model::HttpRuleKey(*r),
        {{"kind", model::kHttpRule}, {"scope", scope}, {"name", name}});
  }
  void TcpRule(const std::string& scope, const std::string& name, int port,
               const std::string& component) {
    auto r = model::ParseTcpRule({{"name", name}, {"listen_port", port}, {"component", component}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    Put(model::kTcpRule, scope, name, model::ToJson(*r));
    Put(model::kGatewayClaim, "", model::TcpRuleKey(*r),
        {{"kind", model::kTcpRule}, {"scope", scope}, {"name", name}});
  }

  std::vector<std::string> Claims() {
    ListOptions o;
    o.limit = 1000;
    auto l = store_->List(model::kGatewayClaim, o);
    EXPECT_TRUE(l.ok());
    std::vector<std::string> out;
    for (const Object& c : l->items) out.push_back(c.name);
    return out;
  }

  void Commit(std::vector<Op> ops) {
    WriteBatch b;
    b.ops = std::move(ops);
    auto r = store_->Commit(b);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  static Op Tree(const std::string& scope) {
    Op op;
    op.type = OpType::kDeleteTree;
    op.object.scope = scope;
    return op;
  }

  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(ClaimsTest, DeletingAnAppReleasesOnlyItsClaims) {
  HttpRule("default/shop", "a", "shop.example.com", {{{"component", "web"}, {"port", 8080}}});
  TcpRule("default/shop", "tcp-15432", 15432, "db");
  HttpRule("default/blog", "a", "blog.example.com", {{{"component", "web"}, {"port", 8080}}});
  auto ops = ClaimReleaseOps(*store_, "default/shop");
  ASSERT_TRUE(ops.ok()) << ops.status().ToString();
  ASSERT_EQ(ops->size(), 2u);
  for (const Op& op : *ops) {
    EXPECT_EQ(op.type, OpType::kDelete);
    EXPECT_EQ(op.object.kind, model::kGatewayClaim);
    EXPECT_GT(op.expected_revision, 0);
  }
  ops->push_back(Tree("default/shop"));
  Commit(std::move(*ops));
  EXPECT_EQ(Claims(), std::vector<std::string>{"http blog.example.com /"});
}

TEST_F(ClaimsTest, DeletingATeamReleasesEveryAppsClaims) {
  HttpRule("default/shop", "same", "shop.example.com", {{{"component", "web"}, {"port", 8080}}});
  HttpRule("default/blog", "same", "blog.example.com", {{{"component", "web"}, {"port", 8080}}});
  TcpRule("acme/crm", "tcp-1000", 1000, "db");
  auto ops = ClaimReleaseOps(*store_, "default");
  ASSERT_TRUE(ops.ok());
  EXPECT_EQ(ops->size(), 2u);
  Commit(std::move(*ops));
  EXPECT_EQ(Claims(), std::vector<std::string>{"tcp 1000"});
}

TEST_F(ClaimsTest, AClaimTakenOverByAnotherRuleIsNotReleased) {
  TcpRule("default/shop", "tcp-2000", 2000, "db");
  // The claim now names a rule of another app (as after a takeover).
  Put(model::kGatewayClaim, "", "tcp 2000",
      {{"kind", model::kTcpRule}, {"scope", "acme/crm"}, {"name", "tcp-2000"}});
  auto ops = ClaimReleaseOps(*store_, "default/shop");
  ASSERT_TRUE(ops.ok());
  EXPECT_TRUE(ops->empty());
}

TEST_F(ClaimsTest, ReleaseOpsFailTheCommitWhenTheClaimChangedMeanwhile) {
  TcpRule("default/shop", "tcp-3000", 3000, "db");
  auto ops = ClaimReleaseOps(*store_, "default/shop");
  ASSERT_TRUE(ops.ok());
  Put(model::kGatewayClaim, "", "tcp 3000",
      {{"kind", model::kTcpRule}, {"scope", "default/shop"}, {"name", "tcp-3000"}});
  WriteBatch b;
  b.ops = *ops;
  EXPECT_FALSE(store_->Commit(b).ok());
  EXPECT_EQ(Claims(), std::vector<std::string>{"tcp 3000"});
}

TEST_F(ClaimsTest, DeletingAComponentRemovesOrTrimsTheRulesRoutingToIt) {
  TcpRule("default/shop", "db-port", 4000, "db");
  TcpRule("default/shop", "other-port", 4001, "cache");
  HttpRule("default/shop", "only-web", "web.example.com", {{{"component", "web"}, {"port", 8080}}});
  HttpRule("default/shop", "canary", "canary.example.com",
           {{{"component", "web"}, {"port", 8080}, {"weight", 90}},
            {{"component", "db"}, {"port", 8080}, {"weight", 10}}});
  HttpRule("default/shop", "zero-left", "zero.example.com",
           {{{"component", "db"}, {"port", 8080}, {"weight", 100}},
            {{"component", "web"}, {"port", 8080}, {"weight", 0}}});
  std::vector<std::string> changed;
  auto ops = ComponentRuleOps(*store_, "default", "shop", "db", &changed);
  ASSERT_TRUE(ops.ok()) << ops.status().ToString();
  std::sort(changed.begin(), changed.end());
  EXPECT_EQ(changed, (std::vector<std::string>{"http_rule/canary", "http_rule/zero-left",
                                                "tcp_rule/db-port"}));
  Commit(std::move(*ops));
  EXPECT_EQ(Claims(), (std::vector<std::string>{"http canary.example.com /",
                                                "http web.example.com /", "tcp 4001"}));
  EXPECT_FALSE(store_->Get(model::kTcpRule, "default/shop", "db-port").ok());
  EXPECT_FALSE(store_->Get(model::kHttpRule, "default/shop", "zero-left").ok());
  auto canary = store_->Get(model::kHttpRule, "default/shop", "canary");
  ASSERT_TRUE(canary.ok());
  auto rule = model::ParseHttpRule(Json::parse(canary->body));
  ASSERT_TRUE(rule.ok());
  ASSERT_EQ(rule->backends.size(), 1u);
  EXPECT_EQ(rule->backends[0].component, "web");
  // Nothing routes to "api": nothing to do.
  auto none = ComponentRuleOps(*store_, "default", "shop", "api");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(ClaimsTest, SweepRemovesClaimsWhoseRuleIsGone) {
  HttpRule("default/shop", "live", "live.example.com", {{{"component", "web"}, {"port", 8080}}});
  TcpRule("default/blog", "tcp-5000", 5000, "db");
  // Left behind by an app delete of an older version.
  Put(model::kGatewayClaim, "", "http gone.example.com /",
      {{"kind", model::kHttpRule}, {"scope", "default/gone"}, {"name", "x"}});
  // A rule that routes something else now than the claim names.
  Put(model::kGatewayClaim, "", "tcp 5001",
      {{"kind", model::kTcpRule}, {"scope", "default/blog"}, {"name", "tcp-5000"}});
  Put(model::kGatewayClaim, "", "tcp 5002", Json::object());  // no owner at all
  auto n = SweepStaleClaims(*store_);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 3);
  EXPECT_EQ(Claims(), (std::vector<std::string>{"http live.example.com /", "tcp 5000"}));
  auto again = SweepStaleClaims(*store_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
}

}  // namespace
}  // namespace berth::routing
