#include <gtest/gtest.h>

#include "model/model.h"

namespace berth::model {
namespace {

Json J(const char* s) { return Json::parse(s); }

TEST(GatewayModelTest, HttpRuleDefaultsAndRoundTrip) {
  auto r = ParseHttpRule(J(R"({"domain":"Shop.Example.COM","backends":[{"component":"web"}]})"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->domain, "shop.example.com");
  EXPECT_EQ(r->path_prefix, "/");
  EXPECT_EQ(r->balance, "round_robin");
  EXPECT_EQ(r->backends[0].weight, 100);
  EXPECT_EQ(r->timeouts.connect_ms, 5000);
  r->name = DefaultHttpRuleName(*r);
  EXPECT_EQ(r->name, "shop-example-com");
  Json out = ToJson(*r);
  auto again = ParseHttpRule(out);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(ToJson(*again), out);
}

TEST(GatewayModelTest, HttpRuleNormalisesPathsAndMatches) {
  auto r = ParseHttpRule(J(R"({"domain":"*.example.com","path_prefix":"/api/v1/",
      "headers":[{"name":"X-Canary","value":"yes"}],"cookies":[{"name":"beta","value":"1"}],
      "backends":[{"component":"web","weight":90},{"component":"web","version":"v7","weight":10}]})"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->path_prefix, "/api/v1");
  EXPECT_EQ(r->headers[0].name, "x-canary");
  EXPECT_EQ(HttpRuleKey(*r), "http *.example.com /api/v1 c:beta=1 h:x-canary=yes");
  std::string name = DefaultHttpRuleName(*r);
  EXPECT_EQ(name.rfind("wildcard-example-com-api-v1-", 0), 0u) << name;
  EXPECT_LE(name.size(), 63u);
}

TEST(GatewayModelTest, DerivedNamesAreDnsLabels) {
  HttpRule r;
  r.domain = "8080.web.shop.localhost";
  r.path_prefix = "/" + std::string(100, 'a');
  std::string name = DefaultHttpRuleName(r);
  EXPECT_EQ(name.rfind("r-8080-web", 0), 0u) << name;
  EXPECT_LE(name.size(), 63u);
  EXPECT_NE(name.back(), '-');
}

TEST(GatewayModelTest, HttpRuleRejectsBadInputNamingTheField) {
  struct Case {
    const char* body;
    const char* field;
  } cases[] = {
      {R"({"backends":[{"component":"web"}]})", "domain"},
      {R"({"domain":"bad_domain.com","backends":[{"component":"web"}]})", "domain"},
      {R"({"domain":"a.*.com","backends":[{"component":"web"}]})", "domain"},
      {R"({"domain":"*.com","backends":[{"component":"web"}]})", "domain"},
      {R"({"domain":"-a.com","backends":[{"component":"web"}]})", "domain"},
      {R"({"domain":"a..com","backends":[{"component":"web"}]})", "domain"},
      {R"({"domain":"a.com"})", "backends"},
      {R"({"domain":"a.com","backends":[]})", "backends"},
      {R"({"domain":"a.com","backends":[{"component":"web","weight":0}]})", "backends"},
      {R"({"domain":"a.com","backends":[{"component":"Web"}]})", "backends[0].component"},
      {R"({"domain":"a.com","backends":[{"component":"web","port":70000}]})", "backends[0].port"},
      {R"({"domain":"a.com","backends":[{"component":"web"},{"component":"web"}]})", "backends[1]"},
      {R"({"domain":"a.com","backends":[{"component":"web","colour":1}]})", "backends[0].colour"},
      {R"({"domain":"a.com","path_prefix":"api","backends":[{"component":"web"}]})", "path_prefix"},
      {R"({"domain":"a.com","path_prefix":"/a/../b","backends":[{"component":"web"}]})", "path_prefix"},
      {R"({"domain":"a.com","path_prefix":"/a?b","backends":[{"component":"web"}]})", "path_prefix"},
      {R"({"domain":"a.com","headers":[{"name":"bad name","value":"x"}],"backends":[{"component":"web"}]})", "headers[0].name"},
      {R"({"domain":"a.com","headers":[{"name":"a","value":"1"},{"name":"A","value":"2"}],"backends":[{"component":"web"}]})", "headers[1].name"},
      {R"({"domain":"a.com","cookies":[{"name":"c","value":"a;b"}],"backends":[{"component":"web"}]})", "cookies[0].value"},
      {R"({"domain":"a.com","balance":"random","backends":[{"component":"web"}]})", "balance"},
      {R"({"domain":"a.com","redirect_https":true,"backends":[{"component":"web"}]})", "redirect_https"},
      {R"({"domain":"a.com","rate_limit":{"requests_per_second":-1},"backends":[{"component":"web"}]})", "rate_limit.requests_per_second"},
      {R"({"domain":"a.com","rate_limit":{"burst":5},"backends":[{"component":"web"}]})", "rate_limit.burst"},
      {R"({"domain":"a.com","timeouts":{"connect_ms":0},"backends":[{"component":"web"}]})", "timeouts.connect_ms"},
      {R"({"domain":"a.com","certificate":"Bad","backends":[{"component":"web"}]})", "certificate"},
      {R"({"domain":"a.com","name":"x_y","backends":[{"component":"web"}]})", "name"},
      {R"({"domain":"a.com","colour":"red","backends":[{"component":"web"}]})", "colour"},
  };
  for (const Case& c : cases) {
    auto r = ParseHttpRule(J(c.body));
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().field(), c.field) << c.body << " → " << r.status().ToString();
  }
  auto unknown = ParseHttpRule(J(R"({"domain":"a.com","colour":"red","backends":[{"component":"web"}]})"));
  EXPECT_EQ(unknown.status().reason(), "unknown_field");
}

TEST(GatewayModelTest, TcpRule) {
  auto t = ParseTcpRule(J(R"({"listen_port":15432,"component":"db","port":5432,"team":"x"})"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->balance, "round_robin");
  EXPECT_EQ(t->idle_timeout_ms, 3600000);  // haproxy-like default: an hour
  EXPECT_EQ(TcpRuleKey(*t), "tcp 15432");
  auto again = ParseTcpRule(ToJson(*t));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ToJson(*again), ToJson(*t));
  EXPECT_EQ(ParseTcpRule(J(R"({"component":"db"})")).status().field(), "listen_port");
  EXPECT_EQ(ParseTcpRule(J(R"({"listen_port":0,"component":"db"})")).status().field(), "listen_port");
  EXPECT_EQ(ParseTcpRule(J(R"({"listen_port":1,"component":"db","balance":"hash_cookie"})")).status().field(), "balance");
  EXPECT_EQ(ParseTcpRule(J(R"({"listen_port":1})")).status().field(), "component");
  auto idle = ParseTcpRule(J(R"({"listen_port":1,"component":"db","idle_timeout_ms":30000})"));
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(idle->idle_timeout_ms, 30000);
  EXPECT_EQ(ToJson(*idle)["idle_timeout_ms"], 30000);
  for (const char* bad : {"0", "999", "86400001", "-5", "\"30s\"", "1.5e3"}) {
    std::string body = std::string(R"({"listen_port":1,"component":"db","idle_timeout_ms":)") + bad + "}";
    auto r = ParseTcpRule(J(body.c_str()));
    EXPECT_EQ(r.status().field(), "idle_timeout_ms") << bad;
  }
}

TEST(GatewayModelTest, CertificateInput) {
  auto c = ParseCertificateInput(J(R"({"name":"shop","cert_pem":"A","chain_pem":"B","key_pem":"K",
      "domains":["ignored"],"expired":false})"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->cert_pem, "A\nB");
  EXPECT_EQ(ParseCertificateInput(J(R"({"name":"shop","key_pem":"K"})")).status().field(), "cert_pem");
  EXPECT_EQ(ParseCertificateInput(J(R"({"name":"shop","cert_pem":"A"})")).status().field(), "key_pem");
  EXPECT_EQ(ParseCertificateInput(J(R"({"name":"Shop","cert_pem":"A","key_pem":"K"})")).status().field(), "name");
  EXPECT_EQ(ParseCertificateInput(J(R"({"name":"shop","cert_pem":"A","key_pem":"K","x":1})")).status().reason(), "unknown_field");
  Certificate stored;
  stored.name = "shop";
  stored.domains = {"a.example.com"};
  stored.key_sealed = "sb1:xx";
  auto back = CertificateFromJson(ToJson(stored));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->domains, stored.domains);
  EXPECT_EQ(back->key_sealed, "sb1:xx");
}

}  // namespace
}  // namespace berth::model
