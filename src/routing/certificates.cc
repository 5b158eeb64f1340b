#include "routing/certificates.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <memory>

namespace berth::routing {
namespace {

struct BioFree { void operator()(BIO* b) const { BIO_free(b); } };
struct X509Free { void operator()(X509* x) const { X509_free(x); } };
struct KeyFree { void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); } };
struct NamesFree {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

// Never prompt for a passphrase (OpenSSL's default callback reads the terminal).
int NoPassphrase(char*, int, int, void*) { return -1; }

Bio MemBio(const std::string& text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

size_t CountBlocks(const std::string& pem, const std::string& begin) {
  size_t n = 0;
  for (size_t at = pem.find(begin); at != std::string::npos; at = pem.find(begin, at + 1)) ++n;
  return n;
}

std::string NameText(const X509_NAME* name) {
  Bio b(BIO_new(BIO_s_mem()));
  if (!b) return "";
  X509_NAME_print_ex(b.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long len = BIO_get_mem_data(b.get(), &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : "";
}

std::string TimeText(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return "";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> DnsNames(X509* cert) {
  std::vector<std::string> out;
  std::unique_ptr<GENERAL_NAMES, NamesFree> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
      if (n->type != GEN_DNS) continue;
      const ASN1_IA5STRING* s = n->d.dNSName;
      std::string d(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                    static_cast<size_t>(ASN1_STRING_length(s)));
      d = Lower(d);
      if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
    }
  }
  if (out.empty()) {  // no SAN: the subject's common name (what old certificates rely on)
    X509_NAME* subject = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx >= 0) {
      ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
      unsigned char* utf8 = nullptr;
      int len = ASN1_STRING_to_UTF8(&utf8, cn);
      if (len > 0) {
        out.push_back(Lower(std::string(reinterpret_cast<char*>(utf8), static_cast<size_t>(len))));
      }
      OPENSSL_free(utf8);
    }
  }
  return out;
}

}  // namespace

bool CertificateCovers(const std::string& cert_domain, const std::string& domain) {
  if (cert_domain == domain) return true;
  if (cert_domain.rfind("*.", 0) != 0 || domain.rfind("*.", 0) == 0) return false;
  size_t dot = domain.find('.');
  return dot != std::string::npos && domain.substr(dot) == cert_domain.substr(1);
}

bool CertificateExpired(const model::Certificate& c, TimePoint now) {
  // Both sides are RFC 3339 UTC; the first 19 characters compare as times.
  return !c.not_after.empty() && FormatTime(now).substr(0, 19) > c.not_after.substr(0, 19);
}

Result<model::Certificate> InspectCertificate(const std::string& cert_pem,
                                              const std::string& key_pem) {
  ERR_clear_error();
  model::Certificate out;
  const std::string kBeginCert = "-----BEGIN CERTIFICATE-----";
  size_t blocks = CountBlocks(cert_pem, "-----BEGIN ");
  size_t cert_blocks = CountBlocks(cert_pem, kBeginCert);
  if (cert_blocks == 0) {
    return InvalidArgument("cert_pem is not a PEM certificate (expected \"" + kBeginCert +
                               "\" blocks: the leaf first, then its chain)",
                           "cert_pem");
  }
  if (blocks != cert_blocks) {
    return InvalidArgument("cert_pem holds something other than certificates (a private key "
                           "belongs in key_pem)",
                           "cert_pem");
  }
  Bio bio = MemBio(cert_pem);
  Cert leaf;
  for (size_t i = 0; i < cert_blocks; ++i) {
    Cert c(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
    if (!c) {
      ERR_clear_error();
      return InvalidArgument(i == 0 ? std::string("cert_pem: the certificate does not parse "
                                                  "(damaged base64 or not X.509)")
                                    : "cert_pem: chain certificate " + std::to_string(i) +
                                          " does not parse",
                             "cert_pem");
    }
    if (i == 0) leaf = std::move(c);
  }
  if (CountBlocks(key_pem, "ENCRYPTED") > 0) {
    return InvalidArgument("key_pem is encrypted with a passphrase: upload it decrypted "
                           "(openssl pkey -in key.pem -out plain.pem)",
                           "key_pem");
  }
  if (CountBlocks(key_pem, "-----BEGIN ") != 1 || key_pem.find("PRIVATE KEY-----") == std::string::npos) {
    return InvalidArgument("key_pem is not one PEM private key (expected \"-----BEGIN PRIVATE "
                           "KEY-----\", RSA or EC)",
                           "key_pem");
  }
  Bio kbio = MemBio(key_pem);
  Key key(PEM_read_bio_PrivateKey(kbio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    ERR_clear_error();
    return InvalidArgument("key_pem: the private key does not parse", "key_pem");
  }
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    ERR_clear_error();
    return InvalidArgument("key_pem is not the private key of this certificate", "key_pem");
  }
  out.domains = DnsNames(leaf.get());
  if (out.domains.empty()) {
    return InvalidArgument("the certificate names no DNS name (no subjectAltName and no CN)",
                           "cert_pem");
  }
  for (const std::string& d : out.domains) {
    std::string copy = d;
    if (!model::ValidateDomain(&copy, "cert_pem").ok()) {
      return InvalidArgument("the certificate names \"" + d.substr(0, 100) +
                                 "\", which is not a host name",
                             "cert_pem");
    }
  }
  out.subject = NameText(X509_get_subject_name(leaf.get()));
  out.issuer = NameText(X509_get_issuer_name(leaf.get()));
  out.not_before = TimeText(X509_get0_notBefore(leaf.get()));
  out.not_after = TimeText(X509_get0_notAfter(leaf.get()));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(leaf.get(), EVP_sha256(), md, &md_len) == 1) {
    static const char kHex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < md_len; ++i) {
      out.fingerprint_sha256 += kHex[md[i] >> 4];
      out.fingerprint_sha256 += kHex[md[i] & 15];
    }
  }
  out.cert_pem = cert_pem;
  ERR_clear_error();
  return out;
}

}  // namespace berth::routing
