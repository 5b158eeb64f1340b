// The SQLite engine of the store.
//
// Connections: one writer connection, guarded by write_mu_, serializes all commits (SQLite allows
// one writer at a time anyway); a pool of reader connections, opened on demand up to
// kMaxReaders, serves Get/List/Find/Count/ChangesSince/ListAudit, one reader per thread at a
// time. In WAL mode readers never wait for the writer (not even while it fsyncs), so reads stay
// in the microseconds under concurrent writes. Every connection caches its prepared statements.
// The database file is meant to be owned by one process: Head() is served from memory.
//
// Data model (kept portable to PostgreSQL: plain tables, composite keys, no LIKE, no rowid
// tricks; AUTOINCREMENT becomes an identity column there):
//   meta(key, value)           'head' = newest revision, 'feed_floor' = newest compacted revision
//   objects(kind, scope, name, body, index_key, revision, created_at, updated_at)
//   changes(revision, seq, kind, scope, name, deleted, body, index_key, created_at, updated_at)
//   audit(id, time, revision, actor, team, action, resource, summary)
//   schema_migrations(version, applied_at)
// "At or below scope p" is `scope = p OR (scope >= p + "/" AND scope < p + "0")` ('0' follows
// '/' in byte order), which uses the indexes and needs no escaping of names.
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "core/clock.h"
#include "core/log.h"
#include "store/detail/sqlite_conn.h"
#include "store/store.h"

namespace berth {
namespace {

using store_detail::Connection;
using store_detail::Stmt;

// Reader connections are opened on demand, so as many threads as read at once (up to the cap)
// each get their own and never queue behind a reader that was descheduled mid-query.
constexpr int kInitialReaders = 2;
constexpr size_t kMaxReaders = 64;
constexpr int kBusyTimeoutMs = 5000;
constexpr int kMaxListLimit = 1000;

struct Migration {
  int64_t version;
  const char* sql;
};

// Append-only: a released step is never edited; changes go in a new step.
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('head', 0), ('feed_floor', 0);

CREATE TABLE objects (
  kind       TEXT NOT NULL,
  scope      TEXT NOT NULL,
  name       TEXT NOT NULL,
  body       TEXT NOT NULL,
  index_key  TEXT NOT NULL DEFAULT '',
  revision   BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (kind, scope, name)
);
CREATE INDEX objects_kind_name ON objects (kind, name);
CREATE INDEX objects_kind_index_key ON objects (kind, index_key);
CREATE INDEX objects_scope ON objects (scope);

CREATE TABLE changes (
  revision   BIGINT NOT NULL,
  seq        BIGINT NOT NULL,
  kind       TEXT NOT NULL,
  scope      TEXT NOT NULL,
  name       TEXT NOT NULL,
  deleted    SMALLINT NOT NULL,
  body       TEXT NOT NULL,
  index_key  TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (revision, seq)
);

CREATE TABLE audit (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  time     BIGINT NOT NULL,
  revision BIGINT NOT NULL,
  actor    TEXT NOT NULL,
  team     TEXT NOT NULL,
  action   TEXT NOT NULL,
  resource TEXT NOT NULL,
  summary  TEXT NOT NULL
);
CREATE INDEX audit_team_id ON audit (team, id);
)sql"},
};

// Columns of an object row, in the order ReadObject expects.
#define BERTH_OBJECT_COLUMNS "kind, scope, name, body, index_key, revision, created_at, updated_at"

constexpr char kBeginSql[] = "BEGIN";
constexpr char kBeginImmediateSql[] = "BEGIN IMMEDIATE";
constexpr char kCommitSql[] = "COMMIT";
constexpr char kRollbackSql[] = "ROLLBACK";

constexpr char kMaxMigrationSql[] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
constexpr char kInsertMigrationSql[] =
    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)";

constexpr char kMetaGetSql[] = "SELECT value FROM meta WHERE key = ?1";
constexpr char kMetaSetSql[] = "UPDATE meta SET value = ?2 WHERE key = ?1";

constexpr char kGetSql[] =
    "SELECT " BERTH_OBJECT_COLUMNS " FROM objects WHERE kind = ?1 AND scope = ?2 AND name = ?3";
constexpr char kListAscSql[] = "SELECT " BERTH_OBJECT_COLUMNS
                               " FROM objects WHERE kind = ?1 AND scope = ?2 AND name > ?3"
                               " ORDER BY name ASC LIMIT ?4";
constexpr char kListDescSql[] = "SELECT " BERTH_OBJECT_COLUMNS
                                " FROM objects WHERE kind = ?1 AND scope = ?2"
                                " ORDER BY name DESC LIMIT ?4";
constexpr char kListDescAfterSql[] = "SELECT " BERTH_OBJECT_COLUMNS
                                     " FROM objects WHERE kind = ?1 AND scope = ?2 AND name < ?3"
                                     " ORDER BY name DESC LIMIT ?4";
// Recursive lists: the scope and everything below it, ordered by name (then scope).
constexpr char kListTreeAscSql[] =
    "SELECT " BERTH_OBJECT_COLUMNS " FROM objects WHERE kind = ?1"
    " AND (scope = ?2 OR (scope >= ?5 AND scope < ?6)) AND name > ?3"
    " ORDER BY name ASC, scope ASC LIMIT ?4";
constexpr char kListTreeDescSql[] =
    "SELECT " BERTH_OBJECT_COLUMNS " FROM objects WHERE kind = ?1"
    " AND (scope = ?2 OR (scope >= ?5 AND scope < ?6)) AND (?3 = '' OR name < ?3)"
    " ORDER BY name DESC, scope DESC LIMIT ?4";
constexpr char kFindByNameSql[] =
    "SELECT " BERTH_OBJECT_COLUMNS " FROM objects WHERE kind = ?1 AND name = ?2 ORDER BY scope";
constexpr char kFindByIndexSql[] = "SELECT " BERTH_OBJECT_COLUMNS
                                   " FROM objects WHERE kind = ?1 AND index_key = ?2"
                                   " ORDER BY scope, name";
constexpr char kCountAllSql[] = "SELECT COUNT(*) FROM objects WHERE kind = ?1";
constexpr char kCountTreeSql[] =
    "SELECT COUNT(*) FROM objects WHERE kind = ?1"
    " AND (scope = ?2 OR (scope >= ?3 AND scope < ?4))";

constexpr char kInsertObjectSql[] =
    "INSERT INTO objects (" BERTH_OBJECT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr char kUpdateObjectSql[] =
    "UPDATE objects SET body = ?4, index_key = ?5, revision = ?6, updated_at = ?7"
    " WHERE kind = ?1 AND scope = ?2 AND name = ?3";
constexpr char kDeleteObjectSql[] =
    "DELETE FROM objects WHERE kind = ?1 AND scope = ?2 AND name = ?3";
constexpr char kSelectTreeSql[] = "SELECT " BERTH_OBJECT_COLUMNS
                                  " FROM objects WHERE scope = ?1 OR (scope >= ?2 AND scope < ?3)"
                                  " ORDER BY scope, kind, name";
constexpr char kDeleteTreeSql[] =
    "DELETE FROM objects WHERE scope = ?1 OR (scope >= ?2 AND scope < ?3)";

constexpr char kInsertChangeSql[] =
    "INSERT INTO changes (revision, seq, kind, scope, name, deleted, body, index_key,"
    " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr char kCountChangesSql[] = "SELECT COUNT(*) FROM changes";
#define BERTH_CHANGE_COLUMNS \
  "revision, deleted, kind, scope, name, body, index_key, created_at, updated_at"
constexpr char kChangesSinceSql[] = "SELECT " BERTH_CHANGE_COLUMNS
                                    " FROM changes WHERE revision > ?1"
                                    " ORDER BY revision, seq LIMIT ?2";
constexpr char kChangesOfRevisionSql[] =
    "SELECT " BERTH_CHANGE_COLUMNS " FROM changes WHERE revision = ?1 ORDER BY seq";
constexpr char kRevisionHasMoreSql[] =
    "SELECT 1 FROM changes WHERE revision = ?1 AND seq > ?2 LIMIT 1";
// The oldest revision among the newest `retention` changes: everything older can go while
// keeping every remaining revision complete.
constexpr char kCompactionCutSql[] =
    "SELECT MIN(revision) FROM"
    " (SELECT revision FROM changes ORDER BY revision DESC, seq DESC LIMIT ?1) AS newest";
constexpr char kDeleteChangesSql[] = "DELETE FROM changes WHERE revision <= ?1";

constexpr char kInsertAuditSql[] =
    "INSERT INTO audit (time, revision, actor, team, action, resource, summary)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
constexpr char kListAuditSql[] =
    "SELECT id, time, revision, actor, team, action, resource, summary FROM audit"
    " WHERE team = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3";

#undef BERTH_OBJECT_COLUMNS
#undef BERTH_CHANGE_COLUMNS

Object ReadObject(const Stmt& s) {
  Object o;
  o.kind = s.ColumnText(0);
  o.scope = s.ColumnText(1);
  o.name = s.ColumnText(2);
  o.body = s.ColumnText(3);
  o.index_key = s.ColumnText(4);
  o.revision = s.ColumnInt(5);
  o.created_at_ms = s.ColumnInt(6);
  o.updated_at_ms = s.ColumnInt(7);
  return o;
}

Change ReadChange(const Stmt& s) {
  Change c;
  c.revision = s.ColumnInt(0);
  c.deleted = s.ColumnInt(1) != 0;
  c.object.kind = s.ColumnText(2);
  c.object.scope = s.ColumnText(3);
  c.object.name = s.ColumnText(4);
  c.object.body = s.ColumnText(5);
  c.object.index_key = s.ColumnText(6);
  c.object.revision = c.revision;
  c.object.created_at_ms = s.ColumnInt(7);
  c.object.updated_at_ms = s.ColumnInt(8);
  return c;
}

void BindObjectKey(Stmt& s, const Object& o) {
  s.Bind(1, o.kind);
  s.Bind(2, o.scope);
  s.Bind(3, o.name);
}

// `component "web"`: how errors name an object.
std::string Describe(const Object& o) { return o.kind + " \"" + o.name + "\""; }

int64_t NowMillis() { return UnixMillis(std::chrono::system_clock::now()); }

// Runs all rows of a prepared, bound statement through `read`.
template <class T, class F>
Result<std::vector<T>> ReadAll(Stmt& s, F read) {
  std::vector<T> out;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return out;
    out.push_back(read(s));
  }
}

// Runs a one-row, one-integer query.
Result<int64_t> ReadInt(Stmt& s) {
  BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Internal("store: query returned no row");
  return s.ColumnInt(0);
}

Result<int64_t> ReadMeta(Connection& conn, const char* key) {
  BERTH_ASSIGN_OR_RETURN(Stmt s, conn.Prepare(kMetaGetSql));
  s.Bind(1, std::string_view(key));
  return ReadInt(s);
}

Status RunSql(Connection& conn, const char* sql) {
  BERTH_ASSIGN_OR_RETURN(Stmt s, conn.Prepare(sql));
  return s.Run();
}

// An explicit transaction on one connection: rolled back on scope exit unless committed.
class Transaction {
 public:
  explicit Transaction(Connection& conn) : conn_(conn) {}
  ~Transaction() {
    if (open_ && conn_.InTransaction()) (void)RunSql(conn_, kRollbackSql);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Status Begin(const char* begin_sql) {
    BERTH_RETURN_IF_ERROR(RunSql(conn_, begin_sql));
    open_ = true;
    return Status::Ok();
  }
  Status Commit() {
    Status s = RunSql(conn_, kCommitSql);
    if (s.ok()) open_ = false;
    return s;
  }

 private:
  Connection& conn_;
  bool open_ = false;
};

Status SetPragmas(Connection& conn, bool sync_full, bool writer) {
  BERTH_RETURN_IF_ERROR(conn.Exec("PRAGMA foreign_keys = ON"));
  BERTH_RETURN_IF_ERROR(
      conn.Exec(sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL"));
  if (!writer) return conn.Exec("PRAGMA query_only = ON");
  // The first statement that touches the file: a non-database file fails here.
  BERTH_ASSIGN_OR_RETURN(std::string mode, conn.QueryText("PRAGMA journal_mode = WAL"));
  if (mode != "wal") {
    return Internal("store database \"" + conn.path() + "\": cannot enable WAL (journal mode is " +
                    mode + ")");
  }
  return Status::Ok();
}

Result<std::unique_ptr<Connection>> OpenReader(const std::string& path, bool sync_full) {
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader,
                         Connection::Open(path, /*create=*/false, kBusyTimeoutMs));
  BERTH_RETURN_IF_ERROR(SetPragmas(*reader, sync_full, /*writer=*/false));
  return reader;
}

Status Migrate(Connection& conn) {
  BERTH_RETURN_IF_ERROR(
      conn.Exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"));
  const int64_t latest = kMigrations[std::size(kMigrations) - 1].version;
  for (const Migration& m : kMigrations) {
    // One transaction per step; the version is re-read inside it so two processes starting on
    // the same file cannot both apply a step.
    Transaction txn(conn);
    BERTH_RETURN_IF_ERROR(txn.Begin(kBeginImmediateSql));
    int64_t applied = 0;
    {
      BERTH_ASSIGN_OR_RETURN(Stmt s, conn.Prepare(kMaxMigrationSql));
      BERTH_ASSIGN_OR_RETURN(applied, ReadInt(s));
    }
    if (applied > latest) {
      return Internal("store database \"" + conn.path() + "\" has schema version " +
                      std::to_string(applied) + ", newer than this binary supports (" +
                      std::to_string(latest) + ")");
    }
    if (applied >= m.version) continue;
    BERTH_RETURN_IF_ERROR(conn.Exec(m.sql));
    {
      BERTH_ASSIGN_OR_RETURN(Stmt ins, conn.Prepare(kInsertMigrationSql));
      ins.Bind(1, m.version);
      ins.Bind(2, NowMillis());
      BERTH_RETURN_IF_ERROR(ins.Run());
    }
    BERTH_RETURN_IF_ERROR(txn.Commit());
    Logger("store")->info("migration applied version={} path={}", m.version, conn.path());
  }
  return Status::Ok();
}

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<Connection> writer, std::vector<std::unique_ptr<Connection>> readers,
              const std::string& path, const StoreOptions& options, int64_t head,
              int64_t change_count)
      : writer_(std::move(writer)),
        path_(path),
        sync_full_(options.sync_full),
        readers_(std::move(readers)),
        retention_(std::max<int64_t>(1, options.feed_retention)),
        head_(head),
        change_count_(change_count),
        last_notified_(head) {
    for (auto& r : readers_) free_readers_.push_back(r.get());
  }

  ~SqliteStore() override {
    // Readers first: the last connection to close checkpoints and removes the WAL file.
    readers_.clear();
    writer_.reset();
  }

  // Reads through a small cache of objects (the API's hottest path is a Get per request).
  // Coherence: a commit drops the keys it writes (a tree delete drops everything) and bumps
  // cache_gen_ twice — before its transaction, with commit_open_ set, and again once the
  // transaction ended, before Commit returns. A reader inserts what it read only when no
  // commit is open and none began since it looked, so a value read from a snapshot older than
  // a commit never lands in the cache: not even in the moment between the commit becoming
  // visible in SQLite and its invalidation (a reader that had already seen the new value
  // could otherwise be served the old one from the cache).
  Result<Object> Get(const std::string& kind, const std::string& scope,
                     const std::string& name) override {
    std::string key = CacheKey(kind, scope, name);
    uint64_t gen;
    {
      std::lock_guard<std::mutex> l(cache_mu_);
      auto it = cache_.find(key);
      if (it != cache_.end()) return it->second;
      gen = cache_gen_;
    }
    BERTH_ASSIGN_OR_RETURN(ReaderLease conn, AcquireReader());
    BERTH_ASSIGN_OR_RETURN(Stmt s, conn->Prepare(kGetSql));
    s.Bind(1, kind);
    s.Bind(2, scope);
    s.Bind(3, name);
    BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFound(kind + " \"" + name + "\" not found");
    Object o = ReadObject(s);
    {
      std::lock_guard<std::mutex> l(cache_mu_);
      if (gen == cache_gen_ && !commit_open_) {
        if (cache_.size() >= kCacheEntries) cache_.clear();  // crude but bounded
        cache_.emplace(std::move(key), o);
      }
    }
    return o;
  }

  Result<ListResult> List(const std::string& kind, const ListOptions& options) override {
    const int limit = std::clamp(options.limit, 1, kMaxListLimit);
    const char* sql = options.recursive       ? (options.descending ? kListTreeDescSql
                                                                    : kListTreeAscSql)
                      : !options.descending   ? kListAscSql
                      : options.after.empty() ? kListDescSql
                                              : kListDescAfterSql;
    BERTH_ASSIGN_OR_RETURN(ReaderLease conn, AcquireReader());
    Transaction txn(*conn);  // one snapshot for the items and the revision
    BERTH_RETURN_IF_ERROR(txn.Begin(kBeginSql));
    ListResult result;
    BERTH_ASSIGN_OR_RETURN(result.revision, ReadMeta(*conn, "head"));
    {
      BERTH_ASSIGN_OR_RETURN(Stmt s, conn->Prepare(sql));
      s.Bind(1, kind);
      s.Bind(2, options.scope);
      if (sql != kListDescSql) s.Bind(3, options.after);
      s.Bind(4, static_cast<int64_t>(limit) + 1);  // one extra row tells whether more exist
      if (options.recursive) {
        s.Bind(5, options.scope + "/");
        s.Bind(6, options.scope + "0");
      }
      BERTH_ASSIGN_OR_RETURN(result.items, ReadAll<Object>(s, ReadObject));
    }
    BERTH_RETURN_IF_ERROR(txn.Commit());
    if (result.items.size() > static_cast<size_t>(limit)) {
      result.items.resize(limit);
      result.next = result.items.back().name;
    }
    return result;
  }

  Result<std::vector<Object>> FindByName(const std::string& kind,
                                         const std::string& name) override {
    BERTH_ASSIGN_OR_RETURN(ReaderLease conn, AcquireReader());
    BERTH_ASSIGN_OR_RETURN(Stmt s, conn->Prepare(kFindByNameSql));
    s.Bind(1, kind);
    s.Bind(2, name);
    return ReadAll<Object>(s, ReadObject);
  }

  Result<std::vector<Object>> FindByIndex(const std::string& kind,
                                          const std::string& key) override {
    if (key.empty()) return std::vector<Object>{};  // "" means "not indexed", never a match
    BERTH_ASSIGN_OR_RETURN(ReaderLease conn, AcquireReader());
    BERTH_ASSIGN_OR_RETURN(Stmt s, conn->Prepare(kFindByIndexSql));
    s.Bind(1, kind);
    s.Bind(2, key);
    return ReadAll<Object>(s, ReadObject);
  }

  Result<int64_t> Count(const std::string& kind, const std::string& scope) override {
    BERTH_ASSIGN_OR_RETURN(ReaderLease conn, AcquireReader());
    BERTH_ASSIGN_OR_RETURN(Stmt s, conn->Prepare(scope.empty() ? kCountAllSql : kCountTreeSql));
    s.Bind(1, kind);
    if (!scope.empty()) BindTree(s, 2, scope);
    return ReadInt(s);
  }

  Result<CommitResult> Commit(const WriteBatch& batch) override;
  Status WriteHealth() const override;

  int64_t Head() override { return head_.load(std::memory_order_acquire); }

  Result<std::vector<Change>> ChangesSince(int64_t after, size_t limit) override;

  Result<std::vector<AuditEntry>> ListAudit(const std::string& team, int64_t before_id,
                                            int limit) override {
    BERTH_ASSIGN_OR_RETURN(ReaderLease conn, AcquireReader());
    BERTH_ASSIGN_OR_RETURN(Stmt s, conn->Prepare(kListAuditSql));
    s.Bind(1, team);
    s.Bind(2, before_id > 0 ? before_id : std::numeric_limits<int64_t>::max());
    s.Bind(3, static_cast<int64_t>(std::clamp(limit, 1, kMaxListLimit)));
    return ReadAll<AuditEntry>(s, [](const Stmt& r) {
      AuditEntry e;
      e.id = r.ColumnInt(0);
      e.time_ms = r.ColumnInt(1);
      e.revision = r.ColumnInt(2);
      e.record.actor = r.ColumnText(3);
      e.record.team = r.ColumnText(4);
      e.record.action = r.ColumnText(5);
      e.record.resource = r.ColumnText(6);
      e.record.summary = r.ColumnText(7);
      return e;
    });
  }

  int AddListener(Listener listener) override {
    auto shared = std::make_shared<Listener>(std::move(listener));
    std::unique_lock<std::mutex> l(listeners_mu_, std::defer_lock);
    if (t_notifying != this) l.lock();  // called from a listener: this thread holds the lock
    int id = next_listener_id_++;
    listeners_.emplace(id, std::move(shared));
    return id;
  }

  void RemoveListener(int id) override {
    // Taking listeners_mu_ waits out a notification in flight on another thread, so once this
    // returns the listener is never called again and its captures may be destroyed.
    std::unique_lock<std::mutex> l(listeners_mu_, std::defer_lock);
    if (t_notifying != this) l.lock();
    listeners_.erase(id);
  }

 private:
  static constexpr size_t kCacheEntries = 4096;
  static std::string CacheKey(const std::string& kind, const std::string& scope,
                              const std::string& name) {
    std::string k;
    k.reserve(kind.size() + scope.size() + name.size() + 2);
    k.append(kind).push_back('\0');
    k.append(scope).push_back('\0');
    k.append(name);
    return k;
  }
  // Called before a commit's transaction (`open` true) and after it, whatever its outcome.
  void InvalidateCache(const WriteBatch& batch, bool open) {
    if (batch.ops.empty()) return;
    std::lock_guard<std::mutex> l(cache_mu_);
    ++cache_gen_;
    commit_open_ = open;
    for (const Op& op : batch.ops) {
      if (op.type == OpType::kDeleteTree) {
        cache_.clear();
        return;
      }
      cache_.erase(CacheKey(op.object.kind, op.object.scope, op.object.name));
    }
  }

  // A borrowed reader connection, returned to the pool on destruction.
  class ReaderLease {
   public:
    ReaderLease(SqliteStore* store, Connection* conn) : store_(store), conn_(conn) {}
    ReaderLease(ReaderLease&& other) noexcept
        : store_(other.store_), conn_(std::exchange(other.conn_, nullptr)) {}
    ~ReaderLease() {
      if (conn_ == nullptr) return;
      {
        std::lock_guard<std::mutex> l(store_->readers_mu_);
        store_->free_readers_.push_back(conn_);
      }
      store_->readers_cv_.notify_one();
    }
    ReaderLease(const ReaderLease&) = delete;
    ReaderLease& operator=(const ReaderLease&) = delete;
    ReaderLease& operator=(ReaderLease&&) = delete;
    Connection* operator->() const { return conn_; }
    Connection& operator*() const { return *conn_; }

   private:
    SqliteStore* store_;
    Connection* conn_;
  };

  // A free reader connection; opens another when none is free and the cap allows, else waits.
  Result<ReaderLease> AcquireReader() {
    std::unique_lock<std::mutex> l(readers_mu_);
    while (free_readers_.empty()) {
      if (readers_.size() + readers_opening_ < kMaxReaders) {
        ++readers_opening_;
        l.unlock();  // opening takes a while; others may still take and return connections
        Result<std::unique_ptr<Connection>> opened = OpenReader(path_, sync_full_);
        l.lock();
        --readers_opening_;
        if (!opened.ok()) {
          readers_cv_.notify_one();  // a waiter may try opening in our place
          return opened.status();
        }
        readers_.push_back(std::move(opened).value());
        return ReaderLease(this, readers_.back().get());
      }
      readers_cv_.wait(l);
    }
    Connection* conn = free_readers_.back();
    free_readers_.pop_back();
    return ReaderLease(this, conn);
  }

  // Binds parameters first..first+2 of a "scope at or below path" condition.
  static void BindTree(Stmt& s, int first, const std::string& path) {
    s.Bind(first, path);
    s.Bind(first + 1, path + "/");
    s.Bind(first + 2, path + "0");
  }

  // Applies one op inside the open write transaction. Requires write_mu_.
  Status ApplyOp(const Op& op, int64_t revision, int64_t now, int64_t* seq, CommitResult* result);
  Result<std::optional<Object>> LoadForWrite(const Object& key);
  Status RecordChange(const Object& o, bool deleted, int64_t revision, int64_t* seq);
  // Trims the feed to the newest retention_ changes (whole revisions). Requires write_mu_ and
  // the open write transaction; returns the new (floor, change count) without applying them.
  Status Compact(int64_t* floor, int64_t* change_count);
  void Notify();
  Result<CommitResult> CommitOnce(const WriteBatch& batch);

  static constexpr int64_t kDiskFullMemoryMs = 10000;
  // When the last commit failed for lack of space (steady ms), 0 after a success.
  std::atomic<int64_t> disk_full_at_ms_{0};

  std::mutex write_mu_;
  std::unique_ptr<Connection> writer_;  // guarded by write_mu_

  const std::string path_;
  const bool sync_full_;
  std::mutex readers_mu_;
  std::condition_variable readers_cv_;
  std::vector<std::unique_ptr<Connection>> readers_;  // guarded by readers_mu_
  std::vector<Connection*> free_readers_;             // guarded by readers_mu_
  size_t readers_opening_ = 0;                        // guarded by readers_mu_

  const int64_t retention_;
  std::atomic<int64_t> head_;
  int64_t change_count_;  // rows in `changes`; guarded by write_mu_

  // Held while listeners run, so notifications are serialized and heads only increase.
  std::mutex listeners_mu_;
  std::map<int, std::shared_ptr<Listener>> listeners_;  // guarded by listeners_mu_
  int next_listener_id_ = 1;                            // guarded by listeners_mu_
  int64_t last_notified_;                               // guarded by listeners_mu_
  // The store whose listeners this thread is running, to let a listener (un)register itself.
  static thread_local const SqliteStore* t_notifying;

  // The Get cache (see Get).
  std::mutex cache_mu_;
  std::unordered_map<std::string, Object> cache_;  // guarded by cache_mu_
  uint64_t cache_gen_ = 0;                         // guarded by cache_mu_
  bool commit_open_ = false;                       // guarded by cache_mu_
};

thread_local const SqliteStore* SqliteStore::t_notifying = nullptr;

Result<std::optional<Object>> SqliteStore::LoadForWrite(const Object& key) {
  BERTH_ASSIGN_OR_RETURN(Stmt s, writer_->Prepare(kGetSql));
  BindObjectKey(s, key);
  BERTH_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<Object>();
  return std::optional<Object>(ReadObject(s));
}

Status SqliteStore::RecordChange(const Object& o, bool deleted, int64_t revision, int64_t* seq) {
  BERTH_ASSIGN_OR_RETURN(Stmt s, writer_->Prepare(kInsertChangeSql));
  s.Bind(1, revision);
  s.Bind(2, (*seq)++);
  s.Bind(3, o.kind);
  s.Bind(4, o.scope);
  s.Bind(5, o.name);
  s.Bind(6, static_cast<int64_t>(deleted ? 1 : 0));
  s.Bind(7, o.body);
  s.Bind(8, o.index_key);
  s.Bind(9, o.created_at_ms);
  s.Bind(10, o.updated_at_ms);
  return s.Run();
}

Status SqliteStore::ApplyOp(const Op& op, int64_t revision, int64_t now, int64_t* seq,
                            CommitResult* result) {
  const Object& in = op.object;
  if (op.type == OpType::kDeleteTree) {
    if (in.scope.empty()) {
      return InvalidArgument("a tree delete needs a non-empty scope path", "scope");
    }
    std::vector<Object> doomed;
    {
      BERTH_ASSIGN_OR_RETURN(Stmt s, writer_->Prepare(kSelectTreeSql));
      BindTree(s, 1, in.scope);
      BERTH_ASSIGN_OR_RETURN(doomed, ReadAll<Object>(s, ReadObject));
    }
    for (const Object& o : doomed) BERTH_RETURN_IF_ERROR(RecordChange(o, true, revision, seq));
    BERTH_ASSIGN_OR_RETURN(Stmt del, writer_->Prepare(kDeleteTreeSql));
    BindTree(del, 1, in.scope);
    return del.Run();
  }

  if (in.kind.empty() || in.name.empty()) {
    return InvalidArgument("store op needs a kind and a name", in.kind.empty() ? "kind" : "name");
  }
  BERTH_ASSIGN_OR_RETURN(std::optional<Object> current, LoadForWrite(in));
  auto check_revision = [&]() -> Status {
    if (op.expected_revision == 0 || op.expected_revision == current->revision) {
      return Status::Ok();
    }
    return RevisionConflict(Describe(in) + " was changed: expected revision " +
                            std::to_string(op.expected_revision) + ", current revision " +
                            std::to_string(current->revision));
  };

  switch (op.type) {
    case OpType::kCreate:
    case OpType::kUpdate:
    case OpType::kUpsert: {
      if (op.type == OpType::kCreate && current) {
        return AlreadyExists(Describe(in) + " already exists");
      }
      if (op.type == OpType::kUpdate && !current) return NotFound(Describe(in) + " not found");
      if (current) BERTH_RETURN_IF_ERROR(check_revision());
      Object o = in;
      if (o.body.empty()) o.body = "{}";
      o.revision = revision;
      o.created_at_ms = current ? current->created_at_ms : now;
      o.updated_at_ms = now;
      {
        BERTH_ASSIGN_OR_RETURN(Stmt s,
                               writer_->Prepare(current ? kUpdateObjectSql : kInsertObjectSql));
        BindObjectKey(s, o);
        s.Bind(4, o.body);
        s.Bind(5, o.index_key);
        s.Bind(6, o.revision);
        if (current) {
          s.Bind(7, o.updated_at_ms);
        } else {
          s.Bind(7, o.created_at_ms);
          s.Bind(8, o.updated_at_ms);
        }
        BERTH_RETURN_IF_ERROR(s.Run());
      }
      BERTH_RETURN_IF_ERROR(RecordChange(o, false, revision, seq));
      result->objects.push_back(std::move(o));
      return Status::Ok();
    }
    case OpType::kDelete: {
      if (!current) return NotFound(Describe(in) + " not found");
      BERTH_RETURN_IF_ERROR(check_revision());
      {
        BERTH_ASSIGN_OR_RETURN(Stmt s, writer_->Prepare(kDeleteObjectSql));
        BindObjectKey(s, in);
        BERTH_RETURN_IF_ERROR(s.Run());
      }
      BERTH_RETURN_IF_ERROR(RecordChange(*current, true, revision, seq));
      result->objects.push_back(std::move(*current));
      return Status::Ok();
    }
    case OpType::kDeleteTree:
      break;  // handled above
  }
  return InvalidArgument("unknown store op type");
}

Status SqliteStore::Compact(int64_t* floor, int64_t* change_count) {
  int64_t cut = 0;
  {
    BERTH_ASSIGN_OR_RETURN(Stmt s, writer_->Prepare(kCompactionCutSql));
    s.Bind(1, retention_);
    BERTH_ASSIGN_OR_RETURN(int64_t oldest_kept, ReadInt(s));
    cut = oldest_kept - 1;
  }
  BERTH_ASSIGN_OR_RETURN(int64_t old_floor, ReadMeta(*writer_, "feed_floor"));
  if (cut <= old_floor) {
    *floor = old_floor;
    return Status::Ok();  // one revision alone exceeds the retention; keep it whole
  }
  {
    BERTH_ASSIGN_OR_RETURN(Stmt s, writer_->Prepare(kDeleteChangesSql));
    s.Bind(1, cut);
    BERTH_RETURN_IF_ERROR(s.Run());
  }
  *change_count -= writer_->Changes();
  {
    BERTH_ASSIGN_OR_RETURN(Stmt s, writer_->Prepare(kMetaSetSql));
    s.Bind(1, std::string_view("feed_floor"));
    s.Bind(2, cut);
    BERTH_RETURN_IF_ERROR(s.Run());
  }
  *floor = cut;
  return Status::Ok();
}

namespace {
int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Result<CommitResult> SqliteStore::Commit(const WriteBatch& batch) {
  Result<CommitResult> r = CommitOnce(batch);
  if (r.ok()) {
    disk_full_at_ms_.store(0, std::memory_order_relaxed);
  } else if (r.status().code() == Code::kInsufficientStorage) {
    disk_full_at_ms_.store(SteadyMillis(), std::memory_order_relaxed);
  }
  return r;
}

Status SqliteStore::WriteHealth() const {
  // A failure for lack of space counts for a while, so readiness does not flap between two
  // failing writes; the next commit that succeeds clears it.
  int64_t at = disk_full_at_ms_.load(std::memory_order_relaxed);
  if (at == 0 || SteadyMillis() - at > kDiskFullMemoryMs) return Status::Ok();
  return DiskFull("the store's last write failed", path_);
}

Result<CommitResult> SqliteStore::CommitOnce(const WriteBatch& batch) {
  CommitResult result;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (batch.ops.empty() && batch.audit.empty()) {
      result.revision = head_.load(std::memory_order_relaxed);
      return result;
    }
    const int64_t now = NowMillis();
    // Whatever the outcome, the cache forgets what this batch may have written, and takes
    // nothing in while the transaction is open (see Get).
    InvalidateCache(batch, /*open=*/true);
    struct Invalidate {
      SqliteStore* self;
      const WriteBatch& batch;
      ~Invalidate() { self->InvalidateCache(batch, /*open=*/false); }
    } invalidate{this, batch};
    Transaction txn(*writer_);
    BERTH_RETURN_IF_ERROR(txn.Begin(kBeginImmediateSql));
    BERTH_ASSIGN_OR_RETURN(int64_t head, ReadMeta(*writer_, "head"));
    // A batch without ops (e.g. only a login audit record) changes nothing, so it takes no
    // revision; its audit rows carry the current head.
    const int64_t revision = batch.ops.empty() ? head : head + 1;
    int64_t seq = 0;
    for (const Op& op : batch.ops) {
      BERTH_RETURN_IF_ERROR(ApplyOp(op, revision, now, &seq, &result));
    }
    for (const AuditRecord& a : batch.audit) {
      BERTH_ASSIGN_OR_RETURN(Stmt s, writer_->Prepare(kInsertAuditSql));
      s.Bind(1, now);
      s.Bind(2, revision);
      s.Bind(3, a.actor);
      s.Bind(4, a.team);
      s.Bind(5, a.action);
      s.Bind(6, a.resource);
      s.Bind(7, a.summary);
      BERTH_RETURN_IF_ERROR(s.Run());
    }
    int64_t change_count = change_count_ + seq;
    int64_t floor = -1;
    if (!batch.ops.empty()) {
      {
        BERTH_ASSIGN_OR_RETURN(Stmt s, writer_->Prepare(kMetaSetSql));
        s.Bind(1, std::string_view("head"));
        s.Bind(2, revision);
        BERTH_RETURN_IF_ERROR(s.Run());
      }
      // Compacting in batches of ~10% of the retention keeps the amortized cost per commit
      // small; doing it inside the commit keeps the floor and the feed consistent.
      if (change_count > retention_ + std::max<int64_t>(1, retention_ / 10)) {
        BERTH_RETURN_IF_ERROR(Compact(&floor, &change_count));
      }
    }
    BERTH_RETURN_IF_ERROR(txn.Commit());
    change_count_ = change_count;
    if (floor >= 0) {
      Logger("store")->debug("feed compacted floor={} changes={}", floor, change_count);
    }
    head_.store(revision, std::memory_order_release);
    result.revision = revision;
  }
  if (!batch.ops.empty()) Notify();
  return result;
}

void SqliteStore::Notify() {
  std::lock_guard<std::mutex> l(listeners_mu_);
  // Commits finishing out of order are coalesced: listeners see each head at most once and in
  // increasing order.
  const int64_t head = head_.load(std::memory_order_acquire);
  if (head <= last_notified_) return;
  last_notified_ = head;
  std::vector<std::shared_ptr<Listener>> snapshot;
  snapshot.reserve(listeners_.size());
  for (auto& [id, fn] : listeners_) snapshot.push_back(fn);
  const SqliteStore* outer = t_notifying;
  t_notifying = this;
  for (auto& fn : snapshot) (*fn)(head);
  t_notifying = outer;
}

Result<std::vector<Change>> SqliteStore::ChangesSince(int64_t after, size_t limit) {
  after = std::max<int64_t>(after, 0);
  const int64_t max_rows = static_cast<int64_t>(
      std::clamp<size_t>(limit, 1, static_cast<size_t>(std::numeric_limits<int32_t>::max())));
  BERTH_ASSIGN_OR_RETURN(ReaderLease conn, AcquireReader());
  Transaction txn(*conn);  // floor, head and rows from one snapshot
  BERTH_RETURN_IF_ERROR(txn.Begin(kBeginSql));
  BERTH_ASSIGN_OR_RETURN(int64_t floor, ReadMeta(*conn, "feed_floor"));
  if (after < floor) {
    return Status(Code::kGone, "revision_compacted",
                  "changes after revision " + std::to_string(after) +
                      " were compacted; the oldest resumable revision is " + std::to_string(floor) +
                      "; list again and watch from its revision");
  }
  BERTH_ASSIGN_OR_RETURN(int64_t head, ReadMeta(*conn, "head"));
  std::vector<Change> changes;
  if (after >= head) return changes;
  {
    BERTH_ASSIGN_OR_RETURN(Stmt s, conn->Prepare(kChangesSinceSql));
    s.Bind(1, after);
    s.Bind(2, max_rows);
    BERTH_ASSIGN_OR_RETURN(changes, ReadAll<Change>(s, ReadChange));
  }
  if (changes.empty() || changes.size() < static_cast<size_t>(max_rows)) return changes;

  // The page is full; a watcher resumes after the last revision it saw, so a revision cut in
  // two would lose its tail. Drop the partial revision, or when it is the only one, return it
  // whole (beyond the limit).
  const int64_t last_rev = changes.back().revision;
  // Every revision in the page starts at its seq 0 (compaction drops whole revisions), so the
  // last row's seq is the count of its revision's rows in the page, minus one.
  const int64_t last_seq = std::count_if(changes.begin(), changes.end(),
                                         [&](const Change& c) { return c.revision == last_rev; }) -
                           1;
  bool more = false;
  {
    BERTH_ASSIGN_OR_RETURN(Stmt s, conn->Prepare(kRevisionHasMoreSql));
    s.Bind(1, last_rev);
    s.Bind(2, last_seq);
    BERTH_ASSIGN_OR_RETURN(more, s.Step());
  }
  if (!more) return changes;
  if (changes.front().revision != last_rev) {
    while (changes.back().revision == last_rev) changes.pop_back();
    return changes;
  }
  BERTH_ASSIGN_OR_RETURN(Stmt s, conn->Prepare(kChangesOfRevisionSql));
  s.Bind(1, last_rev);
  return ReadAll<Change>(s, ReadChange);
}

}  // namespace

namespace {

// Open-time failures read "cannot open store database "<path>": <SQLite's message>".
Status OpenError(const Status& s) {
  if (s.message().rfind("cannot open", 0) == 0) return s;
  return Status(s.code(), s.reason(), "cannot open " + s.message());
}

Result<std::unique_ptr<Store>> Open(const std::string& path, const StoreOptions& options) {
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer,
                         Connection::Open(path, /*create=*/true, kBusyTimeoutMs));
  BERTH_RETURN_IF_ERROR(SetPragmas(*writer, options.sync_full, /*writer=*/true));
  BERTH_RETURN_IF_ERROR(Migrate(*writer));

  int64_t head = 0;
  int64_t change_count = 0;
  {
    BERTH_ASSIGN_OR_RETURN(head, ReadMeta(*writer, "head"));
    BERTH_ASSIGN_OR_RETURN(Stmt s, writer->Prepare(kCountChangesSql));
    BERTH_ASSIGN_OR_RETURN(change_count, ReadInt(s));
  }

  std::vector<std::unique_ptr<Connection>> readers;
  for (int i = 0; i < kInitialReaders; ++i) {
    BERTH_ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader, OpenReader(path, options.sync_full));
    readers.push_back(std::move(reader));
  }
  Logger("store")->info("store opened path={} head={} changes={}", path, head, change_count);
  return std::unique_ptr<Store>(
      new SqliteStore(std::move(writer), std::move(readers), path, options, head, change_count));
}

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                               const StoreOptions& options) {
  Result<std::unique_ptr<Store>> store = Open(path, options);
  if (!store.ok()) return OpenError(store.status());
  return store;
}

}  // namespace berth
