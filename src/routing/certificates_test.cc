#include "routing/certificates.h"

#include <gtest/gtest.h>

#include "routing/test_certs_for_test.h"

namespace berth::routing {
namespace {

using testing::MakeCertForTest;

TEST(CertificatesTest, ReadsDomainsValidityAndFingerprint) {
  auto tc = MakeCertForTest({"shop.example.com", "*.shop.example.com"});
  auto c = InspectCertificate(tc.cert_pem, tc.key_pem);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->domains, (std::vector<std::string>{"shop.example.com", "*.shop.example.com"}));
  EXPECT_EQ(c->not_after.size(), 20u) << c->not_after;
  EXPECT_EQ(c->not_after.back(), 'Z');
  EXPECT_LT(c->not_before, c->not_after);
  EXPECT_EQ(c->fingerprint_sha256.size(), 64u);
  EXPECT_NE(c->subject.find("shop.example.com"), std::string::npos);
  EXPECT_EQ(c->cert_pem, tc.cert_pem);
  EXPECT_TRUE(c->key_sealed.empty());
}

TEST(CertificatesTest, FallsBackToTheCommonName) {
  auto tc = MakeCertForTest({}, -60, 3600, "legacy.example.com");
  auto c = InspectCertificate(tc.cert_pem, tc.key_pem);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->domains, std::vector<std::string>{"legacy.example.com"});
}

TEST(CertificatesTest, AcceptsAChainAfterTheLeaf) {
  auto leaf = MakeCertForTest({"a.example.com"});
  auto ca = MakeCertForTest({"ca.example.com"});
  auto c = InspectCertificate(leaf.cert_pem + ca.cert_pem, leaf.key_pem);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->domains, std::vector<std::string>{"a.example.com"});
}

TEST(CertificatesTest, RejectsBadInputNamingTheField) {
  auto a = MakeCertForTest({"a.example.com"});
  auto b = MakeCertForTest({"b.example.com"});
  struct Case {
    std::string cert, key, field, words;
  } cases[] = {
      {"hello", a.key_pem, "cert_pem", "not a PEM certificate"},
      {"-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n", a.key_pem,
       "cert_pem", "does not parse"},
      {a.cert_pem + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", a.key_pem,
       "cert_pem", "chain certificate 1"},
      {a.cert_pem + a.key_pem, a.key_pem, "cert_pem", "key_pem"},
      {a.cert_pem, "garbage", "key_pem", "not one PEM private key"},
      {a.cert_pem, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "key_pem",
       "does not parse"},
      {a.cert_pem, b.key_pem, "key_pem", "not the private key of this certificate"},
      {a.cert_pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
       "key_pem", "passphrase"},
  };
  for (const Case& c : cases) {
    auto r = InspectCertificate(c.cert, c.key);
    ASSERT_FALSE(r.ok()) << c.words;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(r.status().field(), c.field) << r.status().message();
    EXPECT_NE(r.status().message().find(c.words), std::string::npos) << r.status().message();
  }
}

TEST(CertificatesTest, ExpiryIsJudgedAgainstTheGivenTime) {
  auto old = MakeCertForTest({"old.example.com"}, -7200, -3600);
  auto c = InspectCertificate(old.cert_pem, old.key_pem);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(CertificateExpired(*c, std::chrono::system_clock::now()));
  EXPECT_FALSE(CertificateExpired(*c, std::chrono::system_clock::now() - std::chrono::hours(2)));
  auto fresh = InspectCertificate(MakeCertForTest({"new.example.com"}).cert_pem,
                                  MakeCertForTest({"new.example.com"}).key_pem);
  EXPECT_FALSE(fresh.ok());  // two different keys
}

TEST(CertificatesTest, WildcardsCoverOneLabel) {
  EXPECT_TRUE(CertificateCovers("shop.example.com", "shop.example.com"));
  EXPECT_TRUE(CertificateCovers("*.example.com", "shop.example.com"));
  EXPECT_TRUE(CertificateCovers("*.example.com", "*.example.com"));
  EXPECT_FALSE(CertificateCovers("*.example.com", "a.shop.example.com"));
  EXPECT_FALSE(CertificateCovers("*.example.com", "example.com"));
  EXPECT_FALSE(CertificateCovers("shop.example.com", "*.example.com"));
  EXPECT_FALSE(CertificateCovers("a.example.com", "b.example.com"));
}

}  // namespace
}  // namespace berth::routing
