// Helpers over the Store interface that hold for every engine.
#include "store/store.h"

namespace berth {

Result<std::vector<Object>> ListAll(Store& store, const std::string& kind, const std::string& scope,
                                    bool recursive) {
  std::vector<Object> out;
  ListOptions o;
  o.scope = scope;
  o.limit = 1000;
  o.recursive = recursive;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(ListResult r, store.List(kind, o));
    for (Object& obj : r.items) out.push_back(std::move(obj));
    if (r.next.empty()) break;
    o.after = r.next;
  }
  return out;
}

}  // namespace berth
