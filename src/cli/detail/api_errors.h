// Reading the API's answers, shared by every client command: string fields of a JSON body,
// HTTP statuses as Codes, and the server's error body ({code, message, field}) as a Status.
#pragma once

#include <string>

#include "cli/detail/http_client.h"
#include "core/status.h"
#include "cli/output.h"

namespace berth::cli {

// j[key] when j is an object and that field is a string; "" otherwise.
std::string Str(const Json& j, const char* key);

// The Code of an API error answer's HTTP status (kInternal for any other).
Code CodeForHttp(int status);

// A non-2xx answer as a Status: the server's {code, message, field} when the body has them,
// else "http_<status>" with "<what>: the server answered HTTP <status>".
Status StatusFromResponse(const Response& resp, const std::string& what);

}  // namespace berth::cli
