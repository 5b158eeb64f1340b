// The one place where a Status becomes an HTTP status and a JSON error body
// {"code","message","field"?}.
#pragma once

#include "api/http.h"
#include "core/status.h"

namespace berth::api {

int HttpStatusFor(Code code);
HttpResponse ErrorResponse(const Status& status);

}  // namespace berth::api
