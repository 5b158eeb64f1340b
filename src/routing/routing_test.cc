#include "routing/routing.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "routing/certificates.h"
#include "routing/test_certs_for_test.h"

namespace berth::routing {
namespace {

namespace fs = std::filesystem;

class RoutingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("berth-routing-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    StoreOptions so;
    so.sync_full = false;
    auto s = OpenSqliteStore((dir_ / "berth.db").string(), so);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    Put(model::kTeam, "", "default", {{"name", "default"}});
    Put(model::kTeam, "", "acme", {{"name", "acme"}});
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

  void App(const std::string& team, const std::string& app) {
    Put(model::kApp, team, app, {{"name", app}});
  }
  // A component with the given ports ("8080/http/outer", ...).
  void Component(const std::string& team, const std::string& app, const std::string& name,
                 Json ports, Json extra = Json::object()) {
    Json c = {{"name", name}, {"ports", ports}};
    c.update(extra);
    auto parsed = model::ParseComponent(c);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    Put(model::kComponent, team + "/" + app, name, model::ToJson(*parsed));
  }
  void Instance(const std::string& scope, const std::string& name, const std::string& version,
                const std::string& state, bool ready, Json ports, int port) {
    Put(model::kInstance, scope, name,
        {{"name", name}, {"version", version}, {"state", state}, {"ready", ready},
         {"ports", ports}, {"port", port}});
  }
  void Version(const std::string& scope, const std::string& name, const std::string& status) {
    Put(model::kVersion, scope, name, {{"name", name}, {"status", status}});
  }

  gateway::Snapshot Build(Options o = {}) {
    auto s = BuildSnapshot(*store_, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : gateway::Snapshot{};
  }

  static const gateway::HttpRoute* Route(const gateway::Snapshot& s, const std::string& id) {
    for (const auto& r : s.http_routes) {
      if (r.id == id) return &r;
    }
    return nullptr;
  }

  static Json WebPort(int p, bool outer = true, const char* proto = "http") {
    return {{"port", p}, {"protocol", proto}, {"outer", outer}};
  }

  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(RoutingTest, DefaultDomainsForEveryOuterHttpPort) {
  App("default", "shop");
  Component("default", "shop", "web",
            Json::array({WebPort(8080), WebPort(9090), WebPort(7000, false), WebPort(5432, true, "tcp")}));
  App("acme", "crm");
  Component("acme", "crm", "api", Json::array({WebPort(3000)}));
  Component("acme", "crm", "worker", Json::array());

  gateway::Snapshot s = Build({.domain_suffix = "apps.test"});
  ASSERT_EQ(s.http_routes.size(), 3u);
  const auto* first = Route(s, "default/shop/web/default-8080");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->domains,
            (std::vector<std::string>{"web.shop.apps.test", "8080.web.shop.apps.test"}));
  EXPECT_EQ(first->path_prefix, "/");
  ASSERT_EQ(first->backends.size(), 1u);
  EXPECT_EQ(first->backends[0].pool, "default/shop/web:8080");
  EXPECT_EQ(first->component, "web");
  const auto* second = Route(s, "default/shop/web/default-9090");
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->domains, std::vector<std::string>{"9090.web.shop.apps.test"});
  EXPECT_EQ(second->backends[0].pool, "default/shop/web:9090");
  // Other teams get their name before the suffix.
  const auto* acme = Route(s, "acme/crm/api/default-3000");
  ASSERT_NE(acme, nullptr);
  EXPECT_EQ(acme->domains,
            (std::vector<std::string>{"api.crm.acme.apps.test", "3000.api.crm.acme.apps.test"}));
  EXPECT_EQ(s.revision, store_->Head());

  auto routes = DefaultRoutes("default", "shop", "web",
                              {model::Port{8080, "http", true, true, ""}}, "localhost");
  ASSERT_EQ(routes.size(), 1u);
  EXPECT_EQ(routes[0].domains.front(), "web.shop.localhost");
}

TEST_F(RoutingTest, PoolsHoldOnlyReadyInstancesOnTheirMappedPorts) {
  App("default", "shop");
  Component("default", "shop", "web", Json::array({WebPort(8080), WebPort(9090)}));
  Version("default/shop/web", "v1", "ready");
  Instance("default/shop/web", "web-1", "v1", "running", true, {{"8080", 41001}, {"9090", 41002}}, 41001);
  Instance("default/shop/web", "web-2", "v1", "starting", false, {{"8080", 41003}, {"9090", 41004}}, 41003);
  Instance("default/shop/web", "web-3", "v1", "stopping", true, {{"8080", 41005}}, 41005);
  gateway::Snapshot s = Build();
  const gateway::Pool& p = s.pools.at("default/shop/web:8080");
  ASSERT_EQ(p.endpoints.size(), 1u);
  EXPECT_EQ(p.endpoints[0].instance, "web-1");
  EXPECT_EQ(p.endpoints[0].host, "127.0.0.1");
  EXPECT_EQ(p.endpoints[0].port, 41001);
  EXPECT_EQ(p.reason, "");
  const gateway::Pool& q = s.pools.at("default/shop/web:9090");
  ASSERT_EQ(q.endpoints.size(), 1u);
  EXPECT_EQ(q.endpoints[0].port, 41002);
}

TEST_F(RoutingTest, EmptyPoolsSayWhy) {
  App("default", "shop");
  Component("default", "shop", "new", Json::array({WebPort(8080)}));  // nothing built
  Component("default", "shop", "building", Json::array({WebPort(8080)}));
  Version("default/shop/building", "v1", "building");
  Component("default", "shop", "off", Json::array({WebPort(8080)}), {{"desired_state", "stopped"}});
  Component("default", "shop", "zero", Json::array({WebPort(8080)}), {{"replicas", 0}});
  Component("default", "shop", "slow", Json::array({WebPort(8080)}), {{"replicas", 2}});
  Version("default/shop/slow", "v1", "ready");
  Instance("default/shop/slow", "slow-1", "v1", "starting", false, {{"8080", 1}}, 1);
  Instance("default/shop/slow", "slow-2", "v1", "starting", false, {{"8080", 2}}, 2);
  Component("default", "shop", "gone", Json::array({WebPort(8080)}));
  Version("default/shop/gone", "v1", "ready");
  gateway::Snapshot s = Build();
  EXPECT_EQ(s.pools.at("default/shop/new:8080").reason, "no version built yet");
  EXPECT_EQ(s.pools.at("default/shop/building:8080").reason, "no version built yet (v1 building)");
  EXPECT_EQ(s.pools.at("default/shop/off:8080").reason, "component stopped");
  EXPECT_EQ(s.pools.at("default/shop/zero:8080").reason, "component scaled to 0");
  EXPECT_EQ(s.pools.at("default/shop/slow:8080").reason, "no ready instance (2 starting)");
  EXPECT_EQ(s.pools.at("default/shop/gone:8080").reason, "no instance running");
  for (const auto& [key, pool] : s.pools) EXPECT_TRUE(pool.endpoints.empty()) << key;
}

TEST_F(RoutingTest, UserRulesWithCanaryPoolsPerVersionAndAcrossComponents) {
  App("default", "shop");
  Component("default", "shop", "web", Json::array({WebPort(8080)}));
  Component("default", "shop", "web-next", Json::array({WebPort(8000)}));
  Version("default/shop/web", "v6", "ready");
  Version("default/shop/web", "v7", "ready");
  Instance("default/shop/web", "web-1", "v6", "running", true, {{"8080", 41001}}, 41001);
  Instance("default/shop/web", "web-2", "v7", "running", true, {{"8080", 41002}}, 41002);
  Instance("default/shop/web-next", "web-next-1", "v1", "running", true, {{"8000", 42001}}, 42001);
  auto rule = model::ParseHttpRule(Json::parse(R"({"name":"front","domain":"Shop.Example.com",
      "path_prefix":"/api/","headers":[{"name":"X-Canary","value":"1"}],
      "backends":[{"component":"web","port":8080,"version":"v6","weight":90},
                  {"component":"web","port":8080,"version":"v7","weight":10},
                  {"component":"web-next","port":8000,"weight":5}],
      "balance":"hash_cookie","rate_limit":{"requests_per_second":2.5,"burst":5},
      "max_body_bytes":1024,"timeouts":{"connect_ms":100}})"));
  ASSERT_TRUE(rule.ok()) << rule.status().ToString();
  Put(model::kHttpRule, "default/shop", "front", model::ToJson(*rule));
  auto tcp = model::ParseTcpRule(Json::parse(R"({"name":"db","listen_port":15432,"component":"web","port":8080})"));
  ASSERT_TRUE(tcp.ok()) << tcp.status().ToString();
  Put(model::kTcpRule, "default/shop", "db", model::ToJson(*tcp));

  gateway::Snapshot s = Build({.listen_host = "127.0.0.9"});
  const auto* r = Route(s, "default/shop/front");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->domains, std::vector<std::string>{"shop.example.com"});
  EXPECT_EQ(r->path_prefix, "/api");
  ASSERT_EQ(r->headers.size(), 1u);
  EXPECT_EQ(r->headers[0].name, "x-canary");
  ASSERT_EQ(r->backends.size(), 3u);
  EXPECT_EQ(r->backends[0].pool, "default/shop/web:8080@v6");
  EXPECT_EQ(r->backends[0].weight, 90);
  EXPECT_EQ(r->backends[1].pool, "default/shop/web:8080@v7");
  EXPECT_EQ(r->backends[2].pool, "default/shop/web-next:8000");
  EXPECT_EQ(r->balance, gateway::Balance::kHashCookie);
  EXPECT_EQ(r->rate_limit.requests_per_second, 2.5);
  EXPECT_EQ(r->timeouts.connect_ms, 100);
  EXPECT_EQ(r->timeouts.idle_ms, 60000);
  const auto& v6 = s.pools.at("default/shop/web:8080@v6");
  ASSERT_EQ(v6.endpoints.size(), 1u);
  EXPECT_EQ(v6.endpoints[0].instance, "web-1");
  EXPECT_EQ(v6.version, "v6");
  const auto& v7 = s.pools.at("default/shop/web:8080@v7");
  ASSERT_EQ(v7.endpoints.size(), 1u);
  EXPECT_EQ(v7.endpoints[0].instance, "web-2");
  EXPECT_EQ(s.pools.at("default/shop/web:8080").endpoints.size(), 2u);  // the default route
  ASSERT_EQ(s.tcp_routes.size(), 1u);
  EXPECT_EQ(s.tcp_routes[0].id, "default/shop/web/db");
  EXPECT_EQ(s.tcp_routes[0].listen_host, "127.0.0.9");
  EXPECT_EQ(s.tcp_routes[0].listen_port, 15432);
  EXPECT_EQ(s.tcp_routes[0].pool, "default/shop/web:8080");

  // A version that is gone leaves an empty pool with a reason, not a dangling reference.
  rule->backends[1].version = "v9";
  Put(model::kHttpRule, "default/shop", "front", model::ToJson(*rule));
  s = Build();
  EXPECT_EQ(s.pools.at("default/shop/web:8080@v9").reason, "version v9 not found");
}

TEST_F(RoutingTest, HandMadeRulesWithoutPortsResolveOrAreLeftOut) {
  App("default", "shop");
  Component("default", "shop", "web", Json::array({WebPort(5432, false, "tcp"), WebPort(8080, false)}));
  Component("default", "shop", "db", Json::array({WebPort(5432, false, "tcp")}));
  auto a = model::ParseHttpRule(Json::parse(R"({"name":"a","domain":"a.example.com","backends":[{"component":"web"}]})"));
  auto b = model::ParseHttpRule(Json::parse(R"({"name":"b","domain":"b.example.com","backends":[{"component":"db"}]})"));
  ASSERT_TRUE(a.ok() && b.ok());
  Put(model::kHttpRule, "default/shop", "a", model::ToJson(*a));
  Put(model::kHttpRule, "default/shop", "b", model::ToJson(*b));
  gateway::Snapshot s = Build();
  const auto* ra = Route(s, "default/shop/a");
  ASSERT_NE(ra, nullptr);
  EXPECT_EQ(ra->backends[0].pool, "default/shop/web:8080");
  EXPECT_EQ(Route(s, "default/shop/b"), nullptr);  // no HTTP port: no pool can be named
  for (const auto& [key, pool] : s.pools) EXPECT_NE(pool.port, 0) << key;
}

TEST_F(RoutingTest, CertificatesAreDecryptedOnlyWhenUsed) {
  auto box = auth::SecretBox::FromKey(std::string(32, 's'));
  ASSERT_TRUE(box.ok());
  auto tc = testing::MakeCertForTest({"shop.example.com"});
  auto cert = InspectCertificate(tc.cert_pem, tc.key_pem);
  ASSERT_TRUE(cert.ok()) << cert.status().ToString();
  cert->name = "shop-cert";
  cert->key_sealed = box->Seal(tc.key_pem);
  Put(model::kCertificate, "default", "shop-cert", model::ToJson(*cert));
  cert->name = "unused";
  Put(model::kCertificate, "default", "unused", model::ToJson(*cert));
  App("default", "shop");
  Component("default", "shop", "web", Json::array({WebPort(8080)}));
  auto rule = model::ParseHttpRule(Json::parse(R"({"name":"front","domain":"shop.example.com",
      "backends":[{"component":"web","port":8080}],"certificate":"shop-cert","redirect_https":true})"));
  ASSERT_TRUE(rule.ok()) << rule.status().ToString();
  Put(model::kHttpRule, "default/shop", "front", model::ToJson(*rule));

  gateway::Snapshot s = Build({.secrets = &*box});
  ASSERT_EQ(s.certificates.size(), 1u);
  EXPECT_EQ(s.certificates[0].name, "default/shop-cert");
  EXPECT_EQ(s.certificates[0].key_pem, tc.key_pem);
  EXPECT_EQ(s.certificates[0].cert_pem, tc.cert_pem);
  EXPECT_EQ(s.certificates[0].domains, std::vector<std::string>{"shop.example.com"});
  EXPECT_EQ(s.certificates[0].not_after, cert->not_after);
  const auto* r = Route(s, "default/shop/front");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->certificate, "default/shop-cert");
  EXPECT_TRUE(r->redirect_https);

  // Another key cannot open it: the route falls back to plain HTTP instead of failing all.
  auto other = auth::SecretBox::FromKey(std::string(32, 'o'));
  s = Build({.secrets = &*other});
  EXPECT_TRUE(s.certificates.empty());
  r = Route(s, "default/shop/front");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->certificate, "");
  EXPECT_FALSE(r->redirect_https);
}

TEST_F(RoutingTest, SnapshotJsonHasTheDocumentedShape) {
  App("default", "shop");
  Component("default", "shop", "web", Json::array({WebPort(8080)}));
  Instance("default/shop/web", "web-1", "v1", "running", true, {{"8080", 41001}}, 41001);
  Json j = SnapshotToJson(Build());
  EXPECT_EQ(j["revision"], store_->Head());
  ASSERT_EQ(j["http_routes"].size(), 1u);
  const Json& r = j["http_routes"][0];
  for (const char* k : {"id", "team", "app", "component", "domains", "path_prefix", "headers",
                        "cookies", "backends", "balance", "hash_cookie", "certificate",
                        "redirect_https", "rate_limit", "max_body_bytes", "timeouts"}) {
    EXPECT_TRUE(r.contains(k)) << k;
  }
  EXPECT_EQ(r.size(), 16u);
  EXPECT_EQ(r["balance"], "round_robin");
  EXPECT_EQ(r["timeouts"], Json({{"connect_ms", 5000}, {"header_ms", 30000}, {"idle_ms", 60000}, {"total_ms", 0}}));
  EXPECT_EQ(r["backends"], Json::parse(R"([{"pool":"default/shop/web:8080","weight":100}])"));
  const Json& p = j["pools"]["default/shop/web:8080"];
  EXPECT_EQ(p, Json::parse(R"({"team":"default","app":"shop","component":"web","version":"",
      "port":8080,"endpoints":[{"instance":"web-1","host":"127.0.0.1","port":41001}],"reason":""})"));
  EXPECT_TRUE(j["tcp_routes"].is_array());
  EXPECT_TRUE(j["certificates"].is_array());
  EXPECT_EQ(j.size(), 5u);
}

TEST_F(RoutingTest, AddressesListDefaultDomainsThenRules) {
  App("acme", "shop");
  Component("acme", "shop", "web", Json::array({WebPort(8080), WebPort(9090)}));
  auto rule = model::ParseHttpRule(Json::parse(R"({"name":"front","domain":"shop.example.com",
      "path_prefix":"/app","backends":[{"component":"web","port":8080}]})"));
  ASSERT_TRUE(rule.ok());
  Put(model::kHttpRule, "acme/shop", "front", model::ToJson(*rule));
  auto addrs = ComponentAddresses(*store_, "acme", "shop", "web",
                                  {{8080, "http", true, true, ""}, {9090, "http", true, true, ""}},
                                  {.http_port = 18080});
  ASSERT_TRUE(addrs.ok()) << addrs.status().ToString();
  EXPECT_EQ(*addrs, (std::vector<std::string>{"http://web.shop.acme.localhost:18080",
                                              "http://8080.web.shop.acme.localhost:18080",
                                              "http://9090.web.shop.acme.localhost:18080",
                                              "http://shop.example.com:18080/app"}));
}

}  // namespace
}  // namespace berth::routing
