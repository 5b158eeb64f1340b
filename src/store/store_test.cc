#include "store/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"

namespace berth {
namespace {

namespace fs = std::filesystem;

Object Obj(std::string kind, std::string scope, std::string name, std::string body = "{}",
           std::string index_key = {}) {
  Object o;
  o.kind = std::move(kind);
  o.scope = std::move(scope);
  o.name = std::move(name);
  o.body = std::move(body);
  o.index_key = std::move(index_key);
  return o;
}

Op MakeOp(OpType type, Object o, int64_t expected_revision = 0) {
  Op op;
  op.type = type;
  op.object = std::move(o);
  op.expected_revision = expected_revision;
  return op;
}

WriteBatch Batch(std::vector<Op> ops, std::vector<AuditRecord> audit = {}) {
  WriteBatch b;
  b.ops = std::move(ops);
  b.audit = std::move(audit);
  return b;
}

AuditRecord Audit(std::string team, std::string action, std::string resource) {
  AuditRecord a;
  a.actor = "alice";
  a.team = std::move(team);
  a.action = std::move(action);
  a.resource = std::move(resource);
  a.summary = R"({"after":{}})";
  return a;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogLevel("warn");
    std::string tmpl = (fs::temp_directory_path() / "berth-store-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "berth.db").string();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Store& Open(StoreOptions options = {}) {
    store_.reset();
    auto r = OpenSqliteStore(path_, options);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) std::abort();
    store_ = std::move(r).value();
    return *store_;
  }

  // Commits one op and expects success; returns the commit's revision.
  int64_t MustCommit(Op op) {
    auto r = store_->Commit(Batch({std::move(op)}));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->revision : -1;
  }

  Result<CommitResult> TryCommit(Op op) { return store_->Commit(Batch({std::move(op)})); }

  std::vector<std::string> Names(const std::vector<Object>& objects) {
    std::vector<std::string> names;
    for (const Object& o : objects) names.push_back(o.name);
    return names;
  }

  fs::path dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, CreateGetUpdateDeleteRoundTrip) {
  Store& s = Open();
  EXPECT_EQ(s.Head(), 0);

  auto created = s.Commit(Batch({MakeOp(OpType::kCreate, Obj("app", "t1", "shop", R"({"a":1})"))}));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->revision, 1);
  ASSERT_EQ(created->objects.size(), 1u);
  EXPECT_EQ(created->objects[0].revision, 1);
  EXPECT_GT(created->objects[0].created_at_ms, 0);
  EXPECT_EQ(created->objects[0].created_at_ms, created->objects[0].updated_at_ms);
  EXPECT_EQ(s.Head(), 1);

  auto got = s.Get("app", "t1", "shop");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->body, R"({"a":1})");
  EXPECT_EQ(got->revision, 1);
  EXPECT_EQ(got->scope, "t1");

  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  auto updated =
      s.Commit(Batch({MakeOp(OpType::kUpdate, Obj("app", "t1", "shop", R"({"a":2})"), 1)}));
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->revision, 2);
  got = s.Get("app", "t1", "shop");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, R"({"a":2})");
  EXPECT_EQ(got->revision, 2);
  EXPECT_EQ(got->created_at_ms, created->objects[0].created_at_ms);  // kept on update
  EXPECT_GT(got->updated_at_ms, got->created_at_ms);

  auto deleted = s.Commit(Batch({MakeOp(OpType::kDelete, Obj("app", "t1", "shop"), 2)}));
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(deleted->revision, 3);
  ASSERT_EQ(deleted->objects.size(), 1u);
  EXPECT_EQ(deleted->objects[0].body, R"({"a":2})");  // as it was before deletion
  EXPECT_EQ(s.Get("app", "t1", "shop").status().code(), Code::kNotFound);
  EXPECT_EQ(s.Head(), 3);
}

TEST_F(StoreTest, UpsertCreatesThenUpdatesWithCas) {
  Store& s = Open();
  EXPECT_EQ(MustCommit(MakeOp(OpType::kUpsert, Obj("user", "", "bob", R"({"v":1})"))), 1);
  EXPECT_EQ(MustCommit(MakeOp(OpType::kUpsert, Obj("user", "", "bob", R"({"v":2})"))), 2);
  auto stale = TryCommit(MakeOp(OpType::kUpsert, Obj("user", "", "bob", R"({"v":3})"), 1));
  EXPECT_EQ(stale.status().reason(), "revision_conflict");
  EXPECT_EQ(MustCommit(MakeOp(OpType::kUpsert, Obj("user", "", "bob", R"({"v":3})"), 2)), 3);
  EXPECT_EQ(s.Get("user", "", "bob")->body, R"({"v":3})");
}

TEST_F(StoreTest, CasConflictLeavesObjectUnchanged) {
  Store& s = Open();
  MustCommit(MakeOp(OpType::kCreate, Obj("component", "t1/shop", "web", R"({"v":1})")));
  MustCommit(MakeOp(OpType::kUpdate, Obj("component", "t1/shop", "web", R"({"v":2})")));

  auto r = TryCommit(MakeOp(OpType::kUpdate, Obj("component", "t1/shop", "web", R"({"v":3})"), 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kConflict);
  EXPECT_EQ(r.status().reason(), "revision_conflict");
  EXPECT_NE(r.status().message().find("component \"web\""), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("expected revision 1"), std::string::npos);
  EXPECT_NE(r.status().message().find("current revision 2"), std::string::npos);

  auto del = TryCommit(MakeOp(OpType::kDelete, Obj("component", "t1/shop", "web"), 1));
  EXPECT_EQ(del.status().reason(), "revision_conflict");

  auto got = s.Get("component", "t1/shop", "web");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, R"({"v":2})");
  EXPECT_EQ(got->revision, 2);
  EXPECT_EQ(s.Head(), 2);
}

TEST_F(StoreTest, BatchIsAtomicWhenALaterOpFails) {
  Store& s = Open();
  MustCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "existing")));
  auto r = s.Commit(Batch({MakeOp(OpType::kCreate, Obj("app", "t1", "new")),
                           MakeOp(OpType::kCreate, Obj("app", "t1", "existing")),
                           MakeOp(OpType::kCreate, Obj("app", "t1", "third"))},
                          {Audit("t1", "create", "apps/new")}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(s.Get("app", "t1", "new").status().code(), Code::kNotFound);
  EXPECT_EQ(s.Get("app", "t1", "third").status().code(), Code::kNotFound);
  EXPECT_EQ(s.Head(), 1);
  EXPECT_EQ(*s.Count("app", ""), 1);
  auto changes = s.ChangesSince(0, 100);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(changes->size(), 1u);
  EXPECT_TRUE(s.ListAudit("t1", 0, 10)->empty());  // the audit record did not land either

  // The next successful commit takes the revision right after the head.
  EXPECT_EQ(MustCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "new"))), 2);
}

TEST_F(StoreTest, ErrorCodesAndMessages) {
  Store& s = Open();
  MustCommit(MakeOp(OpType::kCreate, Obj("component", "t1/shop", "web")));

  auto dup = TryCommit(MakeOp(OpType::kCreate, Obj("component", "t1/shop", "web")));
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists);
  EXPECT_EQ(dup.status().reason(), "already_exists");
  EXPECT_EQ(dup.status().message(), "component \"web\" already exists");

  auto upd = TryCommit(MakeOp(OpType::kUpdate, Obj("component", "t1/shop", "api")));
  EXPECT_EQ(upd.status().code(), Code::kNotFound);
  EXPECT_EQ(upd.status().reason(), "not_found");

  auto del = TryCommit(MakeOp(OpType::kDelete, Obj("component", "t1/other", "web")));
  EXPECT_EQ(del.status().code(), Code::kNotFound);

  auto get = s.Get("component", "t1/shop", "api");
  EXPECT_EQ(get.status().code(), Code::kNotFound);
  EXPECT_EQ(get.status().reason(), "not_found");
  EXPECT_EQ(get.status().message(), "component \"api\" not found");

  auto tree = TryCommit(MakeOp(OpType::kDeleteTree, Obj("", "", "")));
  EXPECT_EQ(tree.status().code(), Code::kInvalidArgument);
  auto unnamed = TryCommit(MakeOp(OpType::kCreate, Obj("component", "t1/shop", "")));
  EXPECT_EQ(unnamed.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(s.Head(), 1);
}

TEST_F(StoreTest, OpsInOneBatchSeeEachOther) {
  Store& s = Open();
  auto r = s.Commit(Batch({MakeOp(OpType::kCreate, Obj("app", "t1", "a", R"({"v":1})")),
                           MakeOp(OpType::kUpdate, Obj("app", "t1", "a", R"({"v":2})")),
                           MakeOp(OpType::kCreate, Obj("app", "t1", "b"))}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->revision, 1);
  ASSERT_EQ(r->objects.size(), 3u);
  EXPECT_EQ(s.Get("app", "t1", "a")->body, R"({"v":2})");
  auto changes = s.ChangesSince(0, 100);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 3u);
  for (const Change& c : *changes) EXPECT_EQ(c.revision, 1);
}

TEST_F(StoreTest, DeleteTreeStopsAtPathBoundary) {
  Store& s = Open();
  auto r = s.Commit(Batch({
      MakeOp(OpType::kCreate, Obj("app", "t1", "a1")),
      MakeOp(OpType::kCreate, Obj("app", "t1", "a10")),
      MakeOp(OpType::kCreate, Obj("component", "t1/a1", "web")),
      MakeOp(OpType::kCreate, Obj("component", "t1/a1", "api")),
      MakeOp(OpType::kCreate, Obj("version", "t1/a1/web", "v1")),
      MakeOp(OpType::kCreate, Obj("component", "t1/a10", "web")),
      MakeOp(OpType::kCreate, Obj("version", "t1/a10/web", "v1")),
      MakeOp(OpType::kCreate, Obj("component", "t1/a1_x", "web")),  // '_' sorts after '/'
      MakeOp(OpType::kCreate, Obj("component", "t1/a1.x", "web")),  // '.' sorts before '/'
      MakeOp(OpType::kCreate, Obj("component", "t1/a1%", "web")),   // a LIKE wildcard
  }));
  ASSERT_TRUE(r.ok()) << r.status().ToString();

  auto del = s.Commit(Batch({MakeOp(OpType::kDeleteTree, Obj("", "t1/a1", "")),
                             MakeOp(OpType::kDelete, Obj("app", "t1", "a1"))}));
  ASSERT_TRUE(del.ok()) << del.status().ToString();
  EXPECT_EQ(del->objects.size(), 1u);  // only the plain delete reports an object

  EXPECT_EQ(s.Get("component", "t1/a1", "web").status().code(), Code::kNotFound);
  EXPECT_EQ(s.Get("component", "t1/a1", "api").status().code(), Code::kNotFound);
  EXPECT_EQ(s.Get("version", "t1/a1/web", "v1").status().code(), Code::kNotFound);
  EXPECT_EQ(s.Get("app", "t1", "a1").status().code(), Code::kNotFound);
  EXPECT_TRUE(s.Get("app", "t1", "a10").ok());
  EXPECT_TRUE(s.Get("component", "t1/a10", "web").ok());
  EXPECT_TRUE(s.Get("version", "t1/a10/web", "v1").ok());
  EXPECT_TRUE(s.Get("component", "t1/a1_x", "web").ok());
  EXPECT_TRUE(s.Get("component", "t1/a1.x", "web").ok());
  EXPECT_TRUE(s.Get("component", "t1/a1%", "web").ok());

  // One delete change per removed object, all at the batch's revision.
  auto changes = s.ChangesSince(r->revision, 100);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 4u);
  std::set<std::string> removed;
  for (const Change& c : *changes) {
    EXPECT_TRUE(c.deleted);
    EXPECT_EQ(c.revision, del->revision);
    removed.insert(c.object.kind + ":" + c.object.scope + "/" + c.object.name);
  }
  EXPECT_EQ(removed, (std::set<std::string>{"component:t1/a1/web", "component:t1/a1/api",
                                            "version:t1/a1/web/v1", "app:t1/a1"}));
}

TEST_F(StoreTest, ListOrdersPaginatesAndReportsRevision) {
  Store& s = Open();
  std::vector<Op> ops;
  for (const char* n : {"e", "a", "c", "b", "d"})
    ops.push_back(MakeOp(OpType::kCreate, Obj("app", "t1", n)));
  ops.push_back(MakeOp(OpType::kCreate, Obj("app", "t2", "z")));
  ops.push_back(MakeOp(OpType::kCreate, Obj("component", "t1", "x")));
  ASSERT_TRUE(s.Commit(Batch(std::move(ops))).ok());

  ListOptions o;
  o.scope = "t1";
  auto all = s.List("app", o);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Names(all->items), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(all->next, "");
  EXPECT_EQ(all->revision, 1);

  o.limit = 2;
  auto p1 = s.List("app", o);
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(Names(p1->items), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p1->next, "b");
  o.after = p1->next;
  auto p2 = s.List("app", o);
  EXPECT_EQ(Names(p2->items), (std::vector<std::string>{"c", "d"}));
  EXPECT_EQ(p2->next, "d");
  o.after = p2->next;
  auto p3 = s.List("app", o);
  EXPECT_EQ(Names(p3->items), (std::vector<std::string>{"e"}));
  EXPECT_EQ(p3->next, "");

  ListOptions d;
  d.scope = "t1";
  d.descending = true;
  d.limit = 3;
  auto d1 = s.List("app", d);
  EXPECT_EQ(Names(d1->items), (std::vector<std::string>{"e", "d", "c"}));
  EXPECT_EQ(d1->next, "c");
  d.after = d1->next;
  auto d2 = s.List("app", d);
  EXPECT_EQ(Names(d2->items), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(d2->next, "");

  // Exactly `limit` rows left: no next page.
  ListOptions exact;
  exact.scope = "t1";
  exact.limit = 5;
  EXPECT_EQ(s.List("app", exact)->next, "");

  // limit is clamped to 1..1000.
  ListOptions zero;
  zero.scope = "t1";
  zero.limit = 0;
  EXPECT_EQ(s.List("app", zero)->items.size(), 1u);
  zero.limit = 1000000;
  EXPECT_EQ(s.List("app", zero)->items.size(), 5u);

  ListOptions empty;
  empty.scope = "nope";
  auto none = s.List("app", empty);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->items.empty());
  EXPECT_EQ(none->next, "");
}

TEST_F(StoreTest, FindByNameFindByIndexAndCount) {
  Store& s = Open();
  ASSERT_TRUE(s.Commit(Batch({
                           MakeOp(OpType::kCreate, Obj("member", "t1", "bob")),
                           MakeOp(OpType::kCreate, Obj("member", "t2", "bob")),
                           MakeOp(OpType::kCreate, Obj("member", "t2", "carol")),
                           MakeOp(OpType::kCreate, Obj("user", "", "bob")),
                           MakeOp(OpType::kCreate, Obj("token", "", "t-1", "{}", "hash-a")),
                           MakeOp(OpType::kCreate, Obj("token", "", "t-2", "{}", "hash-b")),
                           MakeOp(OpType::kCreate, Obj("session", "", "s-1", "{}", "hash-a")),
                           MakeOp(OpType::kCreate, Obj("component", "t1/a1", "web")),
                           MakeOp(OpType::kCreate, Obj("component", "t1/a1", "api")),
                           MakeOp(OpType::kCreate, Obj("component", "t1/a10", "web")),
                           MakeOp(OpType::kCreate, Obj("component", "t2/a1", "web")),
                           MakeOp(OpType::kCreate, Obj("instance", "t1/a1/web", "i-1")),
                       }))
                  .ok());

  auto bobs = s.FindByName("member", "bob");
  ASSERT_TRUE(bobs.ok());
  ASSERT_EQ(bobs->size(), 2u);
  EXPECT_EQ((*bobs)[0].scope, "t1");
  EXPECT_EQ((*bobs)[1].scope, "t2");
  EXPECT_TRUE(s.FindByName("member", "dave")->empty());

  auto tokens = s.FindByIndex("token", "hash-a");
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_EQ((*tokens)[0].name, "t-1");
  EXPECT_TRUE(s.FindByIndex("token", "hash-c")->empty());
  EXPECT_TRUE(s.FindByIndex("user", "")->empty());

  EXPECT_EQ(*s.Count("component", ""), 4);
  EXPECT_EQ(*s.Count("component", "t1"), 3);
  EXPECT_EQ(*s.Count("component", "t1/a1"), 2);
  EXPECT_EQ(*s.Count("component", "t1/a10"), 1);
  EXPECT_EQ(*s.Count("component", "t3"), 0);
  EXPECT_EQ(*s.Count("member", "t2"), 2);
  EXPECT_EQ(*s.Count("instance", "t1"), 1);
  EXPECT_EQ(*s.Count("user", ""), 1);
}

TEST_F(StoreTest, ChangeFeedInOrderAndResumable) {
  Store& s = Open();
  MustCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "a", R"({"v":1})")));  // 1
  MustCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "b")));                // 2
  MustCommit(MakeOp(OpType::kUpdate, Obj("app", "t1", "a", R"({"v":2})")));  // 3
  MustCommit(MakeOp(OpType::kDelete, Obj("app", "t1", "b")));                // 4

  auto all = s.ChangesSince(0, 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].revision, 1);
  EXPECT_FALSE((*all)[0].deleted);
  EXPECT_EQ((*all)[0].object.name, "a");
  EXPECT_EQ((*all)[2].revision, 3);
  EXPECT_EQ((*all)[2].object.body, R"({"v":2})");
  EXPECT_EQ((*all)[3].revision, 4);
  EXPECT_TRUE((*all)[3].deleted);
  EXPECT_EQ((*all)[3].object.name, "b");
  EXPECT_EQ((*all)[3].object.scope, "t1");

  auto tail = s.ChangesSince(2, 100);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 2u);
  EXPECT_EQ((*tail)[0].revision, 3);
  EXPECT_EQ((*tail)[1].revision, 4);

  auto limited = s.ChangesSince(0, 2);
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 2u);
  EXPECT_EQ(limited->back().revision, 2);

  EXPECT_TRUE(s.ChangesSince(4, 100)->empty());
  EXPECT_TRUE(s.ChangesSince(99, 100)->empty());
}

TEST_F(StoreTest, ChangesSinceNeverSplitsARevision) {
  Store& s = Open();
  MustCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "a")));  // 1: one change
  ASSERT_TRUE(s.Commit(Batch({MakeOp(OpType::kCreate, Obj("app", "t1", "b")),
                              MakeOp(OpType::kCreate, Obj("app", "t1", "c")),
                              MakeOp(OpType::kCreate, Obj("app", "t1", "d"))}))
                  .ok());  // 2: three changes

  auto page = s.ChangesSince(0, 2);  // would cut revision 2 in two: stop before it
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].revision, 1);

  auto big = s.ChangesSince(1, 2);  // revision 2 alone exceeds the limit: returned whole
  ASSERT_TRUE(big.ok());
  ASSERT_EQ(big->size(), 3u);
  for (const Change& c : *big) EXPECT_EQ(c.revision, 2);
}

TEST_F(StoreTest, CompactionMakesOldResumePointsGone) {
  StoreOptions options;
  options.feed_retention = 5;
  Store& s = Open(options);
  for (int i = 0; i < 12; ++i) {
    MustCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "a" + std::to_string(i))));
  }
  EXPECT_EQ(s.Head(), 12);

  auto gone = s.ChangesSince(0, 100);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), Code::kGone);
  EXPECT_EQ(gone.status().reason(), "revision_compacted");

  // Whatever is still resumable is complete and contiguous up to the head, and at least
  // `feed_retention` changes are kept.
  int64_t oldest_ok = -1;
  for (int64_t after = 0; after <= 12; ++after) {
    auto r = s.ChangesSince(after, 100);
    if (!r.ok()) {
      EXPECT_EQ(r.status().reason(), "revision_compacted");
      continue;
    }
    if (oldest_ok < 0) oldest_ok = after;
    ASSERT_EQ(r->size(), static_cast<size_t>(12 - after)) << after;
    for (size_t i = 0; i < r->size(); ++i) EXPECT_EQ((*r)[i].revision, after + 1 + int64_t(i));
  }
  EXPECT_GT(oldest_ok, 0);
  EXPECT_LE(oldest_ok, 12 - 5);

  // The head survives compaction, and the floor survives a reopen.
  Store& again = Open(options);
  EXPECT_EQ(again.Head(), 12);
  EXPECT_EQ(again.ChangesSince(0, 100).status().reason(), "revision_compacted");
  EXPECT_TRUE(again.ChangesSince(oldest_ok, 100).ok());
  EXPECT_EQ(*again.Count("app", "t1"), 12);  // objects are untouched by compaction
}

TEST_F(StoreTest, PersistsAcrossReopen) {
  {
    Store& s = Open();
    MustCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "shop", R"({"x":1})", "key-1")));
    MustCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "blog")));
    MustCommit(MakeOp(OpType::kDelete, Obj("app", "t1", "blog")));
    ASSERT_TRUE(s.Commit(Batch({}, {Audit("t1", "login", "users/alice")})).ok());
  }
  Store& s = Open();
  EXPECT_EQ(s.Head(), 3);
  auto got = s.Get("app", "t1", "shop");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, R"({"x":1})");
  EXPECT_EQ(got->index_key, "key-1");
  EXPECT_EQ(got->revision, 1);
  EXPECT_EQ(s.Get("app", "t1", "blog").status().code(), Code::kNotFound);
  auto changes = s.ChangesSince(0, 100);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 3u);
  EXPECT_TRUE((*changes)[2].deleted);
  EXPECT_EQ(s.ListAudit("t1", 0, 10)->size(), 1u);
  EXPECT_EQ(MustCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "blog"))), 4);
}

TEST_F(StoreTest, MigrationsAreIdempotentOnReopen) {
  Open();
  MustCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "shop")));
  store_.reset();

  auto migrations = [&] {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*), MAX(version) FROM schema_migrations", -1,
                                 &stmt, nullptr),
              SQLITE_OK);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    std::pair<int64_t, int64_t> r{sqlite3_column_int64(stmt, 0), sqlite3_column_int64(stmt, 1)};
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return r;
  };
  auto first = migrations();
  EXPECT_GE(first.first, 1);
  EXPECT_EQ(first.first, first.second);  // versions 1..n, each once

  for (int i = 0; i < 3; ++i) {
    Store& s = Open();
    EXPECT_EQ(s.Head(), 1);
    EXPECT_TRUE(s.Get("app", "t1", "shop").ok());
    store_.reset();
    EXPECT_EQ(migrations(), first);
  }
}

TEST_F(StoreTest, AuditIsAtomicAndListedNewestFirst) {
  Store& s = Open();
  auto r1 = s.Commit(
      Batch({MakeOp(OpType::kCreate, Obj("app", "t1", "a"))}, {Audit("t1", "create", "apps/a")}));
  ASSERT_TRUE(r1.ok());
  auto r2 = s.Commit(
      Batch({MakeOp(OpType::kCreate, Obj("app", "t1", "b"))}, {Audit("t1", "create", "apps/b")}));
  ASSERT_TRUE(r2.ok());
  ASSERT_TRUE(s.Commit(Batch({MakeOp(OpType::kCreate, Obj("user", "", "carol"))},
                             {Audit("", "create", "users/carol")}))
                  .ok());
  // Fails: its audit record must not land.
  EXPECT_FALSE(s.Commit(Batch({MakeOp(OpType::kCreate, Obj("app", "t1", "a"))},
                              {Audit("t1", "create", "apps/a-again")}))
                   .ok());
  // Audit-only batch (a login): written, but takes no revision.
  const int64_t head = s.Head();
  auto login = s.Commit(Batch({}, {Audit("t1", "login", "users/alice")}));
  ASSERT_TRUE(login.ok()) << login.status().ToString();
  EXPECT_EQ(login->revision, head);
  EXPECT_EQ(s.Head(), head);

  auto t1 = s.ListAudit("t1", 0, 10);
  ASSERT_TRUE(t1.ok()) << t1.status().ToString();
  ASSERT_EQ(t1->size(), 3u);
  EXPECT_EQ((*t1)[0].record.action, "login");
  EXPECT_EQ((*t1)[0].revision, head);
  EXPECT_EQ((*t1)[1].record.resource, "apps/b");
  EXPECT_EQ((*t1)[1].revision, r2->revision);
  EXPECT_EQ((*t1)[2].record.resource, "apps/a");
  EXPECT_EQ((*t1)[2].revision, r1->revision);
  EXPECT_EQ((*t1)[2].record.actor, "alice");
  EXPECT_EQ((*t1)[2].record.summary, R"({"after":{}})");
  EXPECT_GT((*t1)[0].id, (*t1)[1].id);
  EXPECT_GT((*t1)[2].time_ms, 0);

  auto page = s.ListAudit("t1", (*t1)[1].id, 10);  // older than the 2nd entry
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].record.resource, "apps/a");
  EXPECT_EQ(s.ListAudit("t1", 0, 1)->size(), 1u);

  auto platform = s.ListAudit("", 0, 10);
  ASSERT_EQ(platform->size(), 1u);
  EXPECT_EQ((*platform)[0].record.resource, "users/carol");
}

TEST_F(StoreTest, ListenersGetTheNewHead) {
  Store& s = Open();
  std::mutex mu;
  std::vector<int64_t> heads;
  int id = s.AddListener([&](int64_t head) {
    std::lock_guard<std::mutex> l(mu);
    heads.push_back(head);
  });
  MustCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "a")));
  MustCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "b")));
  EXPECT_FALSE(TryCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "b"))).ok());  // no call
  ASSERT_TRUE(s.Commit(Batch({}, {Audit("t1", "login", "users/alice")})).ok());  // no call
  {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_EQ(heads, (std::vector<int64_t>{1, 2}));
  }

  // A listener sees the committed data when it runs.
  bool visible = false;
  int id2 = s.AddListener([&](int64_t head) { visible = s.Get("app", "t1", "c").ok(); });
  s.RemoveListener(id);
  MustCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "c")));
  EXPECT_TRUE(visible);
  s.RemoveListener(id2);
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(heads, (std::vector<int64_t>{1, 2}));
}

TEST_F(StoreTest, ConcurrentCommitsGetDistinctRevisions) {
  StoreOptions options;
  options.sync_full = false;  // keeps the test quick; durability is tested separately
  Store& s = Open(options);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::mutex mu;
  std::vector<int64_t> revisions;
  std::atomic<bool> writing{true};
  std::atomic<int> read_errors{0};

  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (writing.load()) {
        ListOptions o;
        o.scope = "t1";
        if (!s.List("app", o).ok()) ++read_errors;
        auto g = s.Get("app", "t1", "w0-0");
        if (!g.ok() && g.status().code() != Code::kNotFound) ++read_errors;
      }
    });
  }
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = s.Commit(
            Batch({MakeOp(OpType::kCreate,
                          Obj("app", "t1", "w" + std::to_string(t) + "-" + std::to_string(i)))}));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        std::lock_guard<std::mutex> l(mu);
        revisions.push_back(r->revision);
      }
    });
  }
  for (auto& w : writers) w.join();
  writing = false;
  for (auto& r : readers) r.join();

  ASSERT_EQ(revisions.size(), static_cast<size_t>(kThreads * kPerThread));
  std::sort(revisions.begin(), revisions.end());
  for (size_t i = 0; i < revisions.size(); ++i) EXPECT_EQ(revisions[i], int64_t(i) + 1);
  EXPECT_EQ(s.Head(), kThreads * kPerThread);
  EXPECT_EQ(*s.Count("app", "t1"), kThreads * kPerThread);
  EXPECT_EQ(read_errors.load(), 0);
}

TEST_F(StoreTest, ConcurrentCasIncrementsNeverLoseUpdates) {
  StoreOptions options;
  options.sync_full = false;
  Store& s = Open(options);
  MustCommit(MakeOp(OpType::kCreate, Obj("counter", "", "c", "0")));
  constexpr int kThreads = 4;
  constexpr int kIncrements = 15;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements;) {
        auto cur = s.Get("counter", "", "c");
        ASSERT_TRUE(cur.ok());
        Object next = *cur;
        next.body = std::to_string(std::stoi(cur->body) + 1);
        auto r = s.Commit(Batch({MakeOp(OpType::kUpdate, next, cur->revision)}));
        if (r.ok()) {
          ++i;
        } else {
          ASSERT_EQ(r.status().reason(), "revision_conflict");
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(s.Get("counter", "", "c")->body, std::to_string(kThreads * kIncrements));
}

// Get reads through a cache: a Get after a commit returned must see the commit, even while
// other threads keep reading (and trying to cache) older snapshots of the same object.
TEST_F(StoreTest, GetNeverServesAStaleObjectAfterACommit) {
  StoreOptions options;
  options.sync_full = false;
  Store& s = Open(options);
  MustCommit(MakeOp(OpType::kCreate, Obj("app", "t1", "a", "0")));
  std::atomic<bool> done{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      int64_t last = 0;
      while (!done.load()) {
        auto o = s.Get("app", "t1", "a");
        if (!o.ok()) continue;  // deleted at the end
        EXPECT_GE(o->revision, last) << "a reader went back in time";
        last = o->revision;
      }
    });
  }
  for (int i = 1; i <= 200; ++i) {
    auto cur = s.Get("app", "t1", "a");
    ASSERT_TRUE(cur.ok());
    ASSERT_EQ(cur->body, std::to_string(i - 1));
    Object next = *cur;
    next.body = std::to_string(i);
    int64_t rev = MustCommit(MakeOp(OpType::kUpdate, next, cur->revision));
    auto after = s.Get("app", "t1", "a");
    ASSERT_TRUE(after.ok());
    ASSERT_EQ(after->revision, rev);
    ASSERT_EQ(after->body, std::to_string(i));
  }
  Object tree;
  tree.scope = "t1";
  MustCommit(MakeOp(OpType::kDeleteTree, tree));
  EXPECT_EQ(s.Get("app", "t1", "a").status().code(), Code::kNotFound);
  done = true;
  for (auto& t : readers) t.join();
}

TEST_F(StoreTest, OpenFailsClearlyForAMissingDirectory) {
  std::string bad = (dir_ / "missing" / "sub" / "berth.db").string();
  auto r = OpenSqliteStore(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == Code::kUnavailable || r.status().code() == Code::kInternal);
  EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("unable to open"), std::string::npos) << r.status().message();
}

TEST_F(StoreTest, OpenFailsClearlyForANonDatabaseFile) {
  {
    std::ofstream f(path_, std::ios::binary);
    f << std::string(8192, 'x');
  }
  auto r = OpenSqliteStore(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "internal");
  EXPECT_NE(r.status().message().find(path_), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("not a database"), std::string::npos) << r.status().message();
}

// A commit that returned OK survives kill -9 of the process right after it.
TEST_F(StoreTest, CommittedBatchesSurviveKill9) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    auto opened = OpenSqliteStore(path_);
    if (!opened.ok()) _exit(2);
    std::unique_ptr<Store> s = std::move(opened).value();
    for (int i = 1; i <= 20; ++i) {
      auto r = s->Commit(Batch({MakeOp(OpType::kCreate, Obj("app", "t1", "a" + std::to_string(i)))},
                               {Audit("t1", "create", "apps/a" + std::to_string(i))}));
      if (!r.ok()) _exit(3);
      int64_t rev = r->revision;
      if (write(fds[1], &rev, sizeof rev) != sizeof rev) _exit(4);
    }
    kill(getpid(), SIGKILL);  // no destructors, no checkpoint, no WAL cleanup
    _exit(5);
  }
  close(fds[1]);
  int64_t last = 0;
  int64_t rev = 0;
  while (read(fds[0], &rev, sizeof rev) == sizeof rev) last = rev;
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  ASSERT_EQ(last, 20);

  Store& s = Open();
  EXPECT_EQ(s.Head(), 20);
  EXPECT_EQ(*s.Count("app", "t1"), 20);
  EXPECT_TRUE(s.Get("app", "t1", "a20").ok());
  EXPECT_EQ(s.ChangesSince(0, 100)->size(), 20u);
  EXPECT_EQ(s.ListAudit("t1", 0, 100)->size(), 20u);
}

}  // namespace
}  // namespace berth

namespace berth {
namespace {

TEST_F(StoreTest, RecursiveListCoversTheSubtreeOnly) {
  Open();
  MustCommit(MakeOp(OpType::kCreate, Obj("event", "t1/a/c1", "0003")));
  MustCommit(MakeOp(OpType::kCreate, Obj("event", "t1/a/c2", "0001")));
  MustCommit(MakeOp(OpType::kCreate, Obj("event", "t1", "0002")));
  MustCommit(MakeOp(OpType::kCreate, Obj("event", "t10/a/c", "0004")));  // sibling team
  ListOptions o;
  o.scope = "t1";
  o.recursive = true;
  o.descending = true;
  o.limit = 2;
  auto page1 = store_->List("event", o);
  ASSERT_TRUE(page1.ok()) << page1.status().ToString();
  ASSERT_EQ(page1->items.size(), 2u);
  EXPECT_EQ(page1->items[0].name, "0003");
  EXPECT_EQ(page1->items[1].name, "0002");
  EXPECT_EQ(page1->next, "0002");
  o.after = page1->next;
  auto page2 = store_->List("event", o);
  ASSERT_TRUE(page2.ok());
  ASSERT_EQ(page2->items.size(), 1u);
  EXPECT_EQ(page2->items[0].name, "0001");
  EXPECT_EQ(page2->items[0].scope, "t1/a/c2");
  EXPECT_EQ(page2->next, "");
  o = ListOptions{};
  o.scope = "t1";
  o.recursive = true;
  auto asc = store_->List("event", o);
  ASSERT_TRUE(asc.ok());
  ASSERT_EQ(asc->items.size(), 3u);
  EXPECT_EQ(asc->items[0].name, "0001");
}

}  // namespace
}  // namespace berth
