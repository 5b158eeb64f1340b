#include "gateway/snapshot.h"

#include <gtest/gtest.h>

namespace berth::gateway {
namespace {

Json Valid() {
  return Json::parse(R"json({
    "revision": 812,
    "http_routes": [{
      "id": "default/shop/web/default-8080", "team": "default", "app": "shop", "component": "web",
      "domains": ["web.shop.localhost", "*.shop.example.com"],
      "path_prefix": "/",
      "headers": [{"name": "X-Canary", "value": "1"}],
      "cookies": [{"name": "beta", "value": "yes"}],
      "backends": [{"pool": "default/shop/web:8080", "weight": 90},
                   {"pool": "default/shop/web:8080@v7", "weight": 10}],
      "balance": "hash_cookie", "hash_cookie": "berth_affinity",
      "certificate": "default/shop-cert", "redirect_https": true,
      "rate_limit": {"requests_per_second": 2.5, "burst": 5},
      "max_body_bytes": 1048576,
      "timeouts": {"connect_ms": 1000, "header_ms": 2000, "idle_ms": 3000, "total_ms": 4000}
    }],
    "tcp_routes": [{
      "id": "default/shop/db/tcp-15432", "team": "default", "app": "shop", "component": "db",
      "listen_host": "127.0.0.1", "listen_port": 15432,
      "pool": "default/shop/db:5432", "balance": "hash_ip", "connect_timeout_ms": 5000,
      "idle_timeout_ms": 30000
    }],
    "pools": {
      "default/shop/web:8080": {"team": "default", "app": "shop", "component": "web",
        "version": "", "port": 8080,
        "endpoints": [{"instance": "web-1", "host": "127.0.0.1", "port": 40123}], "reason": ""},
      "default/shop/web:8080@v7": {"endpoints": [], "reason": "no ready instance (1 starting)"},
      "default/shop/db:5432": {"endpoints": [{"instance": "db-1", "host": "::1", "port": 5432}]}
    },
    "certificates": [{"name": "default/shop-cert", "domains": ["shop.example.com"],
      "cert_pem": "-----BEGIN CERTIFICATE-----x", "key_pem": "-----BEGIN PRIVATE KEY-----y",
      "not_after": "2027-11-01T00:00:00Z"}]
  })json");
}

TEST(Snapshot, ParsesTheDocumentedExample) {
  auto s = ParseSnapshot(Valid());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->revision, 812);
  ASSERT_EQ(s->http_routes.size(), 1u);
  const HttpRoute& r = s->http_routes[0];
  EXPECT_EQ(r.domains[1], "*.shop.example.com");
  EXPECT_EQ(r.balance, Balance::kHashCookie);
  EXPECT_EQ(r.backends[1].weight, 10);
  EXPECT_DOUBLE_EQ(r.rate_limit.requests_per_second, 2.5);
  EXPECT_EQ(r.timeouts.total_ms, 4000);
  EXPECT_TRUE(r.redirect_https);
  ASSERT_EQ(s->tcp_routes.size(), 1u);
  EXPECT_EQ(s->tcp_routes[0].balance, Balance::kHashIp);
  EXPECT_EQ(s->tcp_routes[0].idle_timeout_ms, 30000);
  EXPECT_EQ(s->pools.at("default/shop/db:5432").endpoints[0].host, "::1");
  EXPECT_EQ(s->pools.at("default/shop/web:8080@v7").reason, "no ready instance (1 starting)");
}

TEST(Snapshot, DefaultsAndRoundTrip) {
  Json j = Json::parse(R"({"http_routes": [{"id": "r", "domains": ["A.Example.com"],
      "backends": [{"pool": "p"}]}], "pools": {"p": {}}})");
  auto s = ParseSnapshot(j);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const HttpRoute& r = s->http_routes[0];
  EXPECT_EQ(r.domains[0], "a.example.com");  // lower-cased
  EXPECT_EQ(r.path_prefix, "/");
  EXPECT_EQ(r.backends[0].weight, 100);
  EXPECT_EQ(r.balance, Balance::kRoundRobin);
  EXPECT_EQ(r.timeouts.connect_ms, 5000);
  EXPECT_EQ(r.hash_cookie, "berth_affinity");
  for (const Json& in : {j, Valid()}) {
    auto a = ParseSnapshot(in);
    ASSERT_TRUE(a.ok());
    auto b = ParseSnapshot(ToJson(*a));
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ(ToJson(*a), ToJson(*b));
  }
}

struct BadCase {
  const char* name;
  const char* pointer;  // JSON pointer to replace
  const char* value;    // JSON value ("DELETE" removes)
  const char* field;    // expected Status::field()
};

class SnapshotBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(SnapshotBad, IsAnErrorNamingTheField) {
  const BadCase& c = GetParam();
  Json j = Valid();
  Json::json_pointer p(c.pointer);
  if (std::string(c.value) == "DELETE") {
    j[p.parent_pointer()].erase(p.back());
  } else {
    j[p] = Json::parse(c.value);
  }
  auto s = ParseSnapshot(j);
  ASSERT_FALSE(s.ok()) << c.name;
  EXPECT_EQ(s.status().field(), c.field) << c.name << ": " << s.status().ToString();
  EXPECT_FALSE(s.status().message().empty());
}

INSTANTIATE_TEST_SUITE_P(
    Table, SnapshotBad,
    ::testing::Values(
        BadCase{"unknown top field", "/extra", "1", "extra"},
        BadCase{"unknown route field", "/http_routes/0/prefix", "\"/\"", "http_routes[0].prefix"},
        BadCase{"unknown timeout", "/http_routes/0/timeouts/read_ms", "1",
                "http_routes[0].timeouts.read_ms"},
        BadCase{"unknown pool field", "/pools/default~1shop~1web:8080/weight", "1",
                "pools.default/shop/web:8080.weight"},
        BadCase{"missing id", "/http_routes/0/id", "DELETE", "http_routes[0].id"},
        BadCase{"missing domains", "/http_routes/0/domains", "DELETE", "http_routes[0].domains"},
        BadCase{"empty domains", "/http_routes/0/domains", "[]", "http_routes[0].domains"},
        BadCase{"bad domain", "/http_routes/0/domains/0", "\"shop example.com\"",
                "http_routes[0].domains[0]"},
        BadCase{"domain with port", "/http_routes/0/domains/0", "\"shop.com:80\"",
                "http_routes[0].domains[0]"},
        BadCase{"bare wildcard", "/http_routes/0/domains/0", "\"*\"", "http_routes[0].domains[0]"},
        BadCase{"inner wildcard", "/http_routes/0/domains/0", "\"a.*.com\"",
                "http_routes[0].domains[0]"},
        BadCase{"path without slash", "/http_routes/0/path_prefix", "\"api\"",
                "http_routes[0].path_prefix"},
        BadCase{"path with query", "/http_routes/0/path_prefix", "\"/a?b\"",
                "http_routes[0].path_prefix"},
        BadCase{"dangling pool", "/http_routes/0/backends/1/pool", "\"nope\"",
                "http_routes[0].backends[1].pool"},
        BadCase{"no backends", "/http_routes/0/backends", "[]", "http_routes[0].backends"},
        BadCase{"negative weight", "/http_routes/0/backends/0/weight", "-1",
                "http_routes[0].backends[0].weight"},
        BadCase{"dangling certificate", "/http_routes/0/certificate", "\"other\"",
                "http_routes[0].certificate"},
        BadCase{"bad balance", "/http_routes/0/balance", "\"random\"", "http_routes[0].balance"},
        BadCase{"bad header name", "/http_routes/0/headers/0/name", "\"X Canary\"",
                "http_routes[0].headers[0].name"},
        BadCase{"header value newline", "/http_routes/0/headers/0/value", "\"a\\nb\"",
                "http_routes[0].headers[0].value"},
        BadCase{"negative rate", "/http_routes/0/rate_limit/requests_per_second", "-1",
                "http_routes[0].rate_limit.requests_per_second"},
        BadCase{"zero connect timeout", "/http_routes/0/timeouts/connect_ms", "0",
                "http_routes[0].timeouts.connect_ms"},
        BadCase{"tcp port zero", "/tcp_routes/0/listen_port", "0", "tcp_routes[0].listen_port"},
        BadCase{"tcp port too big", "/tcp_routes/0/listen_port", "70000",
                "tcp_routes[0].listen_port"},
        BadCase{"tcp missing port", "/tcp_routes/0/listen_port", "DELETE",
                "tcp_routes[0].listen_port"},
        BadCase{"tcp hash_cookie", "/tcp_routes/0/balance", "\"hash_cookie\"",
                "tcp_routes[0].balance"},
        BadCase{"tcp host name", "/tcp_routes/0/listen_host", "\"db.local\"",
                "tcp_routes[0].listen_host"},
        BadCase{"tcp zero idle timeout", "/tcp_routes/0/idle_timeout_ms", "0",
                "tcp_routes[0].idle_timeout_ms"},
        BadCase{"tcp idle timeout over a day", "/tcp_routes/0/idle_timeout_ms", "86400001",
                "tcp_routes[0].idle_timeout_ms"},
        BadCase{"tcp idle timeout not a number", "/tcp_routes/0/idle_timeout_ms", "\"1h\"",
                "tcp_routes[0].idle_timeout_ms"},
        BadCase{"tcp dangling pool", "/tcp_routes/0/pool", "\"x\"", "tcp_routes[0].pool"},
        BadCase{"endpoint port", "/pools/default~1shop~1web:8080/endpoints/0/port", "0",
                "pools.default/shop/web:8080.endpoints[0].port"},
        BadCase{"endpoint host", "/pools/default~1shop~1web:8080/endpoints/0/host",
                "\"example.com\"", "pools.default/shop/web:8080.endpoints[0].host"},
        BadCase{"pools not object", "/pools", "[]", "pools"},
        BadCase{"cert not pem", "/certificates/0/cert_pem", "\"abc\"", "certificates[0].cert_pem"},
        BadCase{"cert without name", "/certificates/0/name", "DELETE", "certificates[0].name"},
        BadCase{"revision type", "/revision", "\"1\"", "revision"}),
    [](const auto& info) {
      std::string n = info.param.name;
      for (auto& c : n) {
        if (!isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return n;
    });

TEST(Snapshot, DuplicateIdsAndPortsAreErrors) {
  Json j = Valid();
  j["http_routes"].push_back(j["http_routes"][0]);
  auto s = ParseSnapshot(j);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().field(), "http_routes[1].id");

  j = Valid();
  j["tcp_routes"][0]["id"] = "default/shop/web/default-8080";  // an HTTP route's id
  s = ParseSnapshot(j);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().field(), "tcp_routes[0].id");

  j = Valid();
  Json t = j["tcp_routes"][0];
  t["id"] = "other";
  j["tcp_routes"].push_back(t);
  s = ParseSnapshot(j);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().field(), "tcp_routes[1].listen_port");

  j = Valid();
  j["certificates"].push_back(j["certificates"][0]);
  s = ParseSnapshot(j);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().field(), "certificates[1].name");
}

TEST(Snapshot, NotAnObject) {
  EXPECT_FALSE(ParseSnapshot(Json::array()).ok());
  EXPECT_FALSE(ParseSnapshot(Json(3)).ok());
  EXPECT_TRUE(ParseSnapshot(Json::object()).ok());
}

TEST(Snapshot, DomainValidation) {
  EXPECT_TRUE(IsValidDomain("localhost", false));
  EXPECT_TRUE(IsValidDomain("web.shop.localhost", false));
  EXPECT_TRUE(IsValidDomain("*.example.com", true));
  EXPECT_FALSE(IsValidDomain("*.example.com", false));
  EXPECT_FALSE(IsValidDomain("-a.com", false));
  EXPECT_FALSE(IsValidDomain("a-.com", false));
  EXPECT_FALSE(IsValidDomain("a..com", false));
  EXPECT_FALSE(IsValidDomain("a.com.", false));
  EXPECT_FALSE(IsValidDomain("", false));
  EXPECT_FALSE(IsValidDomain(std::string(64, 'a') + ".com", false));
  EXPECT_TRUE(IsValidDomain(std::string(63, 'a') + ".com", false));
}

}  // namespace
}  // namespace berth::gateway
