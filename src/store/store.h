// The store: berth's desired and observed state, one interface over two engines (SQLite now,
// PostgreSQL later). Everything is an Object addressed by (kind, scope, name) holding a JSON
// body; the model module gives bodies their types. The store knows nothing of teams or roles.
//
// Revisions: every Commit gets the next global revision (1, 2, 3, ...); every object written
// by it carries that revision. Writes are compare-and-set: an op names the revision it expects
// (0 = don't care) and the whole batch fails with revision_conflict if any op's expectation is
// stale. A batch is atomic: all its ops and audit records land, or nothing does.
//
// Change feed: each committed put/delete is recorded with its revision; ChangesSince(rev)
// returns what happened after `rev`, so a watcher can resume where it stopped. The feed keeps
// the newest `feed_retention` changes; older resume points get Code::kGone
// ("revision_compacted"). Listeners are told the new head revision after every commit.
//
// Scopes are '/'-joined paths of parent names: "" for top-level kinds (team, user),
// "team" for apps and members, "team/app" for components, "team/app/component" for
// versions, instances, dependencies and events. A kDeleteTree op deletes every object whose
// scope is the given path or lies below it (cascade delete of an app or a team).
//
// Durability: Commit returns only after the batch is durable against a crash of the process
// (and, with sync=full, of the machine).
// Thread-safety: all methods may be called from any thread concurrently. Listeners run on the
// committing thread after the commit is durable; they must be quick and must not call Commit.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace berth {

struct Object {
  std::string kind;
  std::string scope;
  std::string name;
  std::string body = "{}";   // JSON object text
  std::string index_key;     // optional secondary lookup key (e.g. a token's hash)
  int64_t revision = 0;      // set by the store
  int64_t created_at_ms = 0; // set by the store
  int64_t updated_at_ms = 0; // set by the store
};

enum class OpType {
  kCreate,      // fails with already_exists if present
  kUpdate,      // fails with not_found if absent; CAS on expected_revision
  kUpsert,      // create or update; CAS on expected_revision when present and non-zero
  kDelete,      // fails with not_found if absent; CAS on expected_revision
  kDeleteTree,  // object.scope is the path: deletes all objects at or below it (any kind);
                // the path must be non-empty (invalid_argument otherwise)
};

struct Op {
  OpType type = OpType::kCreate;
  Object object;                // for deletes only kind/scope/name matter
  int64_t expected_revision = 0;  // 0 = any
};

// One entry of the audit log, written in the same transaction as the change it records.
struct AuditRecord {
  std::string actor;     // user name
  std::string team;      // "" for platform-level changes (users)
  std::string action;    // create | update | delete | login | ...
  std::string resource;  // "apps/shop", "apps/shop/components/web", "members/bob"
  std::string summary;   // JSON text: {"before":...,"after":...}
};

struct AuditEntry {
  int64_t id = 0;
  int64_t time_ms = 0;
  int64_t revision = 0;
  AuditRecord record;
};

struct WriteBatch {
  std::vector<Op> ops;
  std::vector<AuditRecord> audit;
};

struct CommitResult {
  int64_t revision = 0;
  // One entry per op in order: the object as written (create/update/upsert) or as it was
  // before deletion (delete). kDeleteTree contributes nothing here.
  std::vector<Object> objects;
};

struct ListOptions {
  std::string scope;        // exact scope to list
  std::string after;        // return names strictly greater than this (less, if descending)
  int limit = 100;          // 1..1000
  bool descending = false;
  // Also list objects in scopes below `scope` (e.g. every event of a team), ordered by name
  // (then scope); `after`/`next` stay names, so names should be unique across the subtree
  // for paging to be exact (event names are).
  bool recursive = false;
};

struct ListResult {
  std::vector<Object> items;
  std::string next;         // pass as `after` for the next page; empty when done
  int64_t revision = 0;     // head revision the list was read at
};

struct Change {
  int64_t revision = 0;
  bool deleted = false;
  Object object;            // for deletes: the object as it was before
                            // (object.revision is the change's revision, for puts and deletes)
};

struct StoreOptions {
  bool sync_full = true;          // fsync every commit (survives power loss, not only kill -9)
  int64_t feed_retention = 100000;  // changes kept for watch resume
};

class Store {
 public:
  virtual ~Store() = default;

  virtual Result<Object> Get(const std::string& kind, const std::string& scope,
                             const std::string& name) = 0;
  virtual Result<ListResult> List(const std::string& kind, const ListOptions& options) = 0;
  // All objects of `kind` with this name, in any scope (e.g. the memberships of a user).
  virtual Result<std::vector<Object>> FindByName(const std::string& kind,
                                                 const std::string& name) = 0;
  // All objects of `kind` whose index_key equals `key` (an empty key matches nothing).
  virtual Result<std::vector<Object>> FindByIndex(const std::string& kind,
                                                  const std::string& key) = 0;
  // Number of objects of `kind` at or below `scope` (scope "" = all).
  virtual Result<int64_t> Count(const std::string& kind, const std::string& scope) = 0;

  // A commit that fails because the disk is full returns kInsufficientStorage
  // ("insufficient_storage") naming the disk; nothing of it was saved.
  virtual Result<CommitResult> Commit(const WriteBatch& batch) = 0;
  // Not OK (insufficient_storage) while writes fail for lack of space: the last commit failed
  // so, no commit succeeded since, and that was less than 10 s ago. Readiness reports it.
  virtual Status WriteHealth() const { return Status::Ok(); }

  virtual int64_t Head() = 0;
  // Changes with revision > after, oldest first, at most `limit`. kGone/"revision_compacted"
  // when changes after `after` have been discarded already.
  // A revision is never split, so resuming after the last returned revision loses nothing: the
  // result ends at a revision boundary, and a single revision of more than `limit` changes is
  // returned whole (the one case exceeding `limit`).
  virtual Result<std::vector<Change>> ChangesSince(int64_t after, size_t limit) = 0;

  // Newest first. `team` "" lists platform-level entries. before_id 0 = from the newest.
  virtual Result<std::vector<AuditEntry>> ListAudit(const std::string& team, int64_t before_id,
                                                    int limit) = 0;

  // Heads reach listeners in increasing order; commits finishing together may share one call.
  // After RemoveListener returns, the listener is not running and will not be called again.
  using Listener = std::function<void(int64_t head)>;
  virtual int AddListener(Listener listener) = 0;
  virtual void RemoveListener(int id) = 0;
};

// Every object of `kind` in `scope` (and in the scopes below it when `recursive`), all pages,
// in name order: for the platform's own scans (controllers, sweeps); the API pages instead.
Result<std::vector<Object>> ListAll(Store& store, const std::string& kind, const std::string& scope,
                                    bool recursive = false);

// Opens (creating if needed) the SQLite database at `path`, runs pending migrations.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                               const StoreOptions& options = {});

}  // namespace berth
