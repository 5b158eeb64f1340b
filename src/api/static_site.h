// Serving one directory as a website (`berth static`, the start command of static sites):
// content types by extension, ETag validators with 304 answers, Cache-Control (a year for
// files whose names carry a content hash or sit under /assets/, revalidation for the rest),
// index.html for directories, 404.html when present, and with `spa` index.html for any path
// that does not name a file (client-side routing). Paths never leave the root (".." segments
// are refused and symlinks are resolved before the check).
// Thread-safety: the handler is stateless and may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "api/http.h"

namespace berth::api {

// The response for one request against `root`.
HttpResponse ServeSite(const std::string& root, const HttpRequest& request, bool spa);
// A Handler for HttpServer that serves `root` (see above).
std::unique_ptr<Handler> NewStaticSiteHandler(std::string root, bool spa);

}  // namespace berth::api
