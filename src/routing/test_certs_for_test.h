// Test-only: self-signed certificates made with OpenSSL for given DNS names and validity, so
// tests need no fixture files that expire. Included only by *_test.cc files.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>
#include <vector>

namespace berth::routing::testing {

struct TestCert {
  std::string cert_pem;
  std::string key_pem;
};

inline std::string BioText(BIO* b) {
  char* data = nullptr;
  long len = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(len));
}

// An EC P-256 key and a self-signed certificate for `names` (SAN DNS), valid from
// now + from_s to now + to_s seconds. `cn` is the subject CN ("" = names[0] or none).
inline TestCert MakeCertForTest(const std::vector<std::string>& names, long from_s = -3600,
                                long to_s = 86400L * 365, std::string cn = "") {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), from_s);
  X509_gmtime_adj(X509_getm_notAfter(x), to_s);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  if (cn.empty() && !names.empty()) cn = names.front();
  if (!cn.empty()) {
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  }
  X509_set_issuer_name(x, name);
  if (!names.empty()) {
    std::string san;
    for (const std::string& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  BIO* cb = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cb, x);
  BIO* kb = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
  TestCert out{BioText(cb), BioText(kb)};
  BIO_free(cb);
  BIO_free(kb);
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

}  // namespace berth::routing::testing
