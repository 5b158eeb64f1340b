// Reading uploaded TLS certificates (PEM) with OpenSSL: the leaf and its chain must parse, the
// private key must parse and belong to the leaf, and the leaf must name at least one DNS
// name. What the API shows about a certificate (domains, validity, issuer, fingerprint) comes
// from here. OpenSSL stays inside this file's implementation.
// Thread-safety: pure functions; safe to call concurrently.
#pragma once

#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "model/model.h"

namespace berth::routing {

// Everything of model::Certificate except name and key_sealed. Errors are invalid_argument
// naming the field to blame: "cert_pem" (not a PEM certificate, a broken chain block, no DNS
// name) or "key_pem" (not a PEM private key, encrypted with a passphrase, not the key of the
// certificate).
Result<model::Certificate> InspectCertificate(const std::string& cert_pem,
                                              const std::string& key_pem);

// Whether a certificate for `cert_domain` ("shop.example.com", "*.example.com") serves
// `domain`. A wildcard covers exactly one label ("*.example.com" covers "a.example.com", not
// "a.b.example.com", as in RFC 6125).
bool CertificateCovers(const std::string& cert_domain, const std::string& domain);

// Whether `now` is past the certificate's not_after.
bool CertificateExpired(const model::Certificate& c, TimePoint now);

}  // namespace berth::routing
