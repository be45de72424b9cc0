// Randomised convergence test for the SharePoint connector and the SyncRunner
// (20 seeds x 8 rounds, page size 2, a SimulatedClock: retries never sleep).
//
// Two document libraries on two sites. Between sync rounds the fake Graph is
// mutated at random (create, edit, rename, move between folders, delete files;
// move, rename and delete folders with their subtrees, which Graph reports as
// the folder alone; add, remove and replace permissions of every kind) and
// faults are injected (429 with Retry-After as seconds or a date, 500/503,
// 401 from token expiry, disconnects, empty pages, duplicated entries, a page
// served twice, expired delta tokens answering 410). Some rounds "kill the
// daemon": a runner is abandoned mid-round (its sink or its before_commit
// hook fails after K pages) and a NEW connector and runner over the same
// checkpoint database finish the round. After every round the index must
// equal an oracle computed from a mirror of the fake's state: ids, titles,
// text, ACLs and uris (webUrls, which change when an ancestor folder moves).
#include "connectors/testing/convergence.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "connectors/framework/checkpoint_store.h"
#include "connectors/framework/in_memory.h"
#include "connectors/framework/sync_runner.h"
#include "connectors/http/retrying_client.h"
#include "connectors/parse/document_parser.h"
#include "connectors/sharepoint/fake_graph_server.h"
#include "connectors/sharepoint/sharepoint_connector.h"
#include "connectors/testing/sync_harness.h"
#include "gtest/gtest.h"

namespace tessera::connectors::sharepoint {
namespace {

constexpr int kRounds = 8;
const std::vector<std::string> &Drives() {
  static const auto *const kDrives = new std::vector<std::string>{"b!alpha", "b!beta"};
  return *kDrives;
}
std::string SiteKey(const std::string &drive) {
  return drive == "b!alpha" ? "contoso.sharepoint.com/sites/alpha"
                            : "contoso.sharepoint.com/sites/beta";
}

std::string SiteOf(const std::string &drive) {
  return drive == "b!alpha" ? "contoso.sharepoint.com,1,a" : "contoso.sharepoint.com,2,b";
}

// The fake's items, mirrored by the test: "<drive>/<id>" -> item; and its
// site pages: "pages:<site>/<id>" -> page, with each library root's
// permissions (the pages' ACL).
struct Model {
  std::map<std::string, FakeDriveItem> items;
  std::map<std::string, FakeSitePage> pages;
  std::map<std::string, std::vector<FakeGraphPermission>> root_perms;  // by drive

  static std::string Key(const std::string &drive, const std::string &id) {
    return absl::StrCat(drive, "/", id);
  }
  std::vector<std::string> Keys(bool folders) const {
    std::vector<std::string> out;
    for (const auto &[k, it] : items) {
      if (it.folder == folders) out.push_back(k);
    }
    return out;
  }
  void DeleteSubtree(const std::string &drive, const std::string &id) {
    std::vector<std::string> doomed = {id};
    for (size_t i = 0; i < doomed.size(); ++i) {
      for (const auto &[k, it] : items) {
        if (k.rfind(drive + "/", 0) == 0 && it.parent_id == doomed[i]) doomed.push_back(it.id);
      }
    }
    for (const std::string &d : doomed) items.erase(Key(drive, d));
  }
  bool Below(const std::string &drive, std::string id, const std::string &ancestor) const {
    while (!id.empty()) {
      if (id == ancestor) return true;
      auto it = items.find(Key(drive, id));
      if (it == items.end()) return false;
      id = it->second.parent_id;
    }
    return false;
  }

  static GraphIdentity Identity(const FakeIdentity &who) {
    if (who.kind == "user") return {.user_email = who.email};
    if (who.kind == "group") return {.group_email = who.email};
    return {.site_group_name = who.display_name};
  }

  std::map<std::string, ConnectorDocument> Oracle(const FakeGraphServer &server,
                                                  absl::Time now) const {
    std::map<std::string, ConnectorDocument> out;
    for (const auto &[key, f] : items) {
      if (f.folder) continue;
      std::string drive = key.substr(0, key.find('/'));
      ConnectorDocument d;
      d.id = key;
      d.title = f.name;
      d.mime_type = f.mime_type;
      d.uri = server.WebUrl(drive, f.id);
      auto parsed = parse::ParseDocument(f.content, f.mime_type);
      if (!parsed.ok()) continue;
      for (parse::ParsedSection &s : parsed->sections) {
        d.sections.push_back({std::move(s.heading), std::move(s.text), s.page});
      }
      d.acl = Acl(f.permissions, drive, now);
      out[key] = std::move(d);
    }
    for (const auto &[key, p] : pages) {
      std::string site = key.substr(6, key.find('/') - 6);
      std::string drive = site == SiteOf("b!alpha") ? "b!alpha" : "b!beta";
      ConnectorDocument d;
      d.id = key;
      d.title = p.title;
      d.mime_type = "text/html";
      d.uri = absl::StrCat("https://", SiteKey(drive), "/SitePages/", p.name);
      std::string html;
      for (const std::string &w : p.web_parts) absl::StrAppend(&html, "<div>", w, "</div>\n");
      if (!html.empty()) {
        auto parsed =
            parse::ParseDocument(absl::StrCat("<html><body>", html, "</body></html>"), "text/html");
        if (!parsed.ok()) continue;
        for (parse::ParsedSection &s : parsed->sections) {
          if (!s.text.empty()) d.sections.push_back({std::move(s.heading), std::move(s.text), 0});
        }
      }
      if (d.sections.empty()) d.sections.push_back({"", d.title, 0});
      if (d.sections.front().heading.empty()) d.sections.front().heading = d.title;
      auto perms = root_perms.find(drive);
      d.acl =
          perms == root_perms.end() ? std::vector<std::string>() : Acl(perms->second, drive, now);
      out[key] = std::move(d);
    }
    return out;
  }

  static std::vector<std::string> Acl(const std::vector<FakeGraphPermission> &fake,
                                      const std::string &drive, absl::Time now) {
    std::vector<GraphPermission> perms;
    for (const FakeGraphPermission &p : fake) {
      GraphPermission gp;
      if (p.granted_to) gp.granted_to = Identity(*p.granted_to);
      gp.link_scope = p.link_scope;
      for (const FakeIdentity &who : p.link_recipients) {
        gp.link_recipients.push_back(Identity(who));
      }
      perms.push_back(std::move(gp));
    }
    return MapGraphPermissions(perms, SiteKey(drive), "x.com", now);
  }
};

class ConvergenceTest : public ::testing::TestWithParam<uint32_t>,
                        protected testing::ConvergenceHarness {
 protected:
  void SetUp() override {
    Seed(GetParam());
    auto server = FakeGraphServer::Start({.clock = &clock_});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    AcceptUpcomingTokens();
    server_->AcceptToken("tok-1");
    ASSERT_EQ(Open(), absl::OkStatus());
    graph_ = MakeClient(&tokens_, 8);
    download_ = MakeClient(nullptr, 8);

    server_->AddSite({"contoso.sharepoint.com,1,a", "alpha", "Alpha",
                      "https://contoso.sharepoint.com/sites/alpha"});
    server_->AddSite({"contoso.sharepoint.com,2,b", "beta", "Beta",
                      "https://contoso.sharepoint.com/sites/beta"});
    ASSERT_TRUE(
        server_->AddLibrary({"b!alpha", "contoso.sharepoint.com,1,a", "Shared Documents"}).ok());
    ASSERT_TRUE(server_->AddLibrary({"b!beta", "contoso.sharepoint.com,2,b", "Documents"}).ok());
    for (const std::string &drive : Drives()) {
      for (int i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(CreateFolder(drive));
    }
    for (int i = 0; i < 14; ++i) ASSERT_NO_FATAL_FAILURE(CreateFile());
  }

  void StartDaemon(SyncRunner::Options runner_options = {}) override {
    SharePointConnector::Options options;
    options.base_url = server_->base_url();
    options.page_size = 2;
    options.tenant_domain = "x.com";
    auto connector = SharePointConnector::Create(graph_.get(), download_.get(), &clock_, options);
    ASSERT_TRUE(connector.ok()) << connector.status();
    connector_ = std::move(*connector);
    runner_options.connector_id = "sharepoint:convergence";
    runner_ = std::make_unique<SyncRunner>(connector_.get(), &crashing_sink_, store_.get(),
                                           runner_options);
  }

  FakeIdentity RandomIdentity() {
    switch (Rand(4)) {
      case 0:
        return {.kind = "user", .email = absl::StrCat("u", Rand(3), "@x.com")};
      case 1:
        return {.kind = "group", .email = absl::StrCat("g", Rand(2), "@x.com")};
      case 2:
        return {.kind = "siteGroup", .display_name = Chance(0.5) ? "Members" : "Owners"};
      default:
        return {.kind = "user", .email = "Ann@X.com"};
    }
  }

  FakeGraphPermission RandomPermission() {
    FakeGraphPermission p;
    p.id = absl::StrCat("p", next_perm_++);
    switch (Rand(5)) {
      case 0:
        p.link_scope = "anonymous";
        break;
      case 1:
        p.link_scope = "organization";
        break;
      case 2:
        p.link_scope = "users";
        for (int i = 0, n = 1 + Rand(2); i < n; ++i) p.link_recipients.push_back(RandomIdentity());
        break;
      default:
        p.granted_to = RandomIdentity();
    }
    return p;
  }

  // A parent in `drive`: the root ("") or one of its folders.
  std::string RandomParent(const std::string &drive) {
    std::vector<std::string> options = {""};
    for (const std::string &k : model_.Keys(/*folders=*/true)) {
      if (k.rfind(drive + "/", 0) == 0) options.push_back(model_.items[k].id);
    }
    return Pick(options);
  }

  void CreateFolder(const std::string &drive) {
    FakeDriveItem f{.id = absl::StrCat("d", next_item_++), .folder = true};
    f.name = absl::StrCat("Folder ", f.id);
    f.parent_id = RandomParent(drive);
    auto id = server_->CreateItem(drive, f);
    ASSERT_TRUE(id.ok()) << id.status();
    model_.items[Model::Key(drive, f.id)] = f;
  }

  void CreateFile() {
    std::string drive = Pick(Drives());
    FakeDriveItem f;
    f.id = absl::StrCat("f", next_item_++);
    f.mime_type = Chance(0.7) ? "text/plain" : "text/html";
    f.name = absl::StrCat(f.id, f.mime_type == "text/plain" ? ".txt" : ".html");
    f.parent_id = RandomParent(drive);
    f.content = f.mime_type == "text/html" ? absl::StrCat("<p>", Words(), "</p>") : Words();
    for (int i = 0, n = Rand(3); i < n; ++i) f.permissions.push_back(RandomPermission());
    ASSERT_TRUE(server_->CreateItem(drive, f).ok());
    model_.items[Model::Key(drive, f.id)] = f;
  }

  void MutateFolder() {
    std::vector<std::string> folders = model_.Keys(/*folders=*/true);
    if (folders.empty()) {
      CreateFolder(Pick(Drives()));
      return;
    }
    std::string key = Pick(folders);
    std::string drive = key.substr(0, key.find('/'));
    FakeDriveItem &f = model_.items[key];
    switch (Rand(4)) {
      case 0: {  // move (not below itself)
        std::string parent = RandomParent(drive);
        if (model_.Below(drive, parent, f.id)) return;
        ASSERT_TRUE(server_->MoveItem(drive, f.id, parent).ok());
        f.parent_id = parent;
        break;
      }
      case 1: {
        std::string name = absl::StrCat("Folder ", f.id, " r", Rand(100));
        ASSERT_TRUE(server_->RenameItem(drive, f.id, name).ok());
        f.name = name;
        break;
      }
      case 2: {
        std::string id = f.id;
        ASSERT_TRUE(server_->DeleteItem(drive, id).ok());
        model_.DeleteSubtree(drive, id);
        break;
      }
      default:
        CreateFolder(drive);
    }
  }

  // Creates, edits and deletes site pages, and changes a library root's
  // permissions (the pages' ACL).
  void MutatePages() {
    std::vector<std::string> keys;
    for (const auto &[k, p] : model_.pages) keys.push_back(k);
    int op = keys.empty() ? 0 : Rand(6);
    if (op <= 1) {
      std::string site = SiteOf(Pick(Drives()));
      FakeSitePage p;
      p.id = absl::StrCat("pg", next_item_++);
      p.name = absl::StrCat(p.id, ".aspx");
      p.title = absl::StrCat("Page ", p.id);
      for (int i = 0, n = Rand(3); i < n; ++i)
        p.web_parts.push_back(absl::StrCat("<p>", Words(), "</p>"));
      ASSERT_TRUE(server_->CreatePage(site, p).ok());
      model_.pages[absl::StrCat("pages:", site, "/", p.id)] = p;
    } else if (op <= 3) {
      std::string key = Pick(keys);
      FakeSitePage &p = model_.pages[key];
      std::string site = key.substr(6, key.find('/') - 6);
      std::string title = Chance(0.5) ? absl::StrCat("Page ", p.id, " v", Rand(1000)) : "";
      std::vector<std::string> parts = {absl::StrCat("<h2>", Words(), "</h2><p>", Words(), "</p>")};
      ASSERT_TRUE(server_->EditPage(site, p.id, title, parts).ok());
      if (!title.empty()) p.title = title;
      p.web_parts = parts;
    } else if (op == 4) {
      std::string key = Pick(keys);
      std::string site = key.substr(6, key.find('/') - 6);
      ASSERT_TRUE(server_->DeletePage(site, model_.pages[key].id).ok());
      model_.pages.erase(key);
    } else {
      std::string drive = Pick(Drives());
      std::vector<FakeGraphPermission> perms;
      for (int i = 0, n = Rand(3); i < n; ++i) perms.push_back(RandomPermission());
      ASSERT_TRUE(server_->SetRootPermissions(drive, perms).ok());
      model_.root_perms[drive] = perms;
    }
  }

  void Mutate() override {
    if (page_ops_ && Chance(0.3)) {
      MutatePages();
      return;
    }
    if (folder_ops_ && Chance(0.15)) {
      MutateFolder();
      return;
    }
    std::vector<std::string> files = model_.Keys(/*folders=*/false);
    int op = Rand(10);
    if (files.empty() || op == 0) {
      CreateFile();
      return;
    }
    std::string key = Pick(files);
    std::string drive = key.substr(0, key.find('/'));
    FakeDriveItem &f = model_.items[key];
    switch (op) {
      case 1:
      case 2: {
        std::string content =
            f.mime_type == "text/html" ? absl::StrCat("<p>", Words(), "</p>") : Words();
        ASSERT_TRUE(server_->EditItem(drive, f.id, content).ok());
        f.content = content;
        break;
      }
      case 3: {
        std::string name =
            absl::StrCat(f.id, "-r", Rand(1000), f.mime_type == "text/plain" ? ".txt" : ".html");
        ASSERT_TRUE(server_->RenameItem(drive, f.id, name).ok());
        f.name = name;
        break;
      }
      case 4: {
        std::string parent = RandomParent(drive);
        ASSERT_TRUE(server_->MoveItem(drive, f.id, parent).ok());
        f.parent_id = parent;
        break;
      }
      case 5: {
        ASSERT_TRUE(server_->DeleteItem(drive, f.id).ok());
        model_.items.erase(key);
        break;
      }
      case 6:
      case 7: {
        FakeGraphPermission p = RandomPermission();
        ASSERT_TRUE(server_->AddPermission(drive, f.id, p).ok());
        f.permissions.push_back(p);
        break;
      }
      case 8: {
        if (f.permissions.empty()) return;
        size_t k = Rand(static_cast<int>(f.permissions.size()));
        ASSERT_TRUE(server_->RemovePermission(drive, f.id, f.permissions[k].id).ok());
        f.permissions.erase(f.permissions.begin() + k);
        break;
      }
      default: {
        std::vector<FakeGraphPermission> perms = {RandomPermission()};
        ASSERT_TRUE(server_->SetPermissions(drive, f.id, perms).ok());
        f.permissions = perms;
      }
    }
  }

  void InjectFaults(std::vector<std::string> *log) override {
    static const std::vector<GraphFault> kFaults = {GraphFault::k429RetryAfterSeconds,
                                                    GraphFault::k429RetryAfterDate,
                                                    GraphFault::k503,
                                                    GraphFault::k500,
                                                    GraphFault::kDisconnect,
                                                    GraphFault::kEmptyPage,
                                                    GraphFault::kDuplicate,
                                                    GraphFault::kRepeatPage};
    static const std::vector<std::string> kPrefixes = {
        "/v1.0/drives/b!alpha/root/delta", "/v1.0/drives/b!beta/root/delta",
        "/v1.0/drives/b!alpha/items/", "/download/", "/v1.0/sites"};
    for (int i = 0, n = Rand(4); i < n; ++i) {
      GraphFault fault = Pick(kFaults);
      std::string prefix = Pick(kPrefixes);
      server_->InjectFault(prefix, fault);
      log->push_back(absl::StrCat("fault ", static_cast<int>(fault), " on ", prefix));
    }
    if (Chance(0.2)) {
      server_->ExpireToken(absl::StrCat("tok-", tokens_.generation()));
      log->push_back("token expired");
    }
    if (Chance(0.15)) {
      std::string drive = Chance(0.5) ? Pick(Drives()) : "";
      server_->ExpireDeltaTokens(drive);
      log->push_back(absl::StrCat("delta tokens expired (", drive.empty() ? "all" : drive, ")"));
    }
  }

  void AcceptToken(const std::string &token) override { server_->AcceptToken(token); }
  absl::StatusOr<SyncStats> Sync() override { return runner_->SyncAll(); }

  std::string FirstDifference() override {
    return testing::FirstIndexDifference(model_.Oracle(*server_, clock_.Now()),
                                         sink_.Documents("sharepoint"));
  }

  std::unique_ptr<FakeGraphServer> server_;
  std::unique_ptr<RetryingHttpClient> graph_;
  std::unique_ptr<RetryingHttpClient> download_;
  std::unique_ptr<SharePointConnector> connector_;
  std::unique_ptr<SyncRunner> runner_;
  Model model_;
  bool folder_ops_ = false;
  bool page_ops_ = false;
  int next_item_ = 0;
  int next_perm_ = 0;
};

TEST_P(ConvergenceTest, IndexEqualsSourceAfterEveryRound) { RunRounds(kRounds); }

// Also moves, renames and deletes folders with everything below them (Graph
// reports only the folder).
TEST_P(ConvergenceTest, WithFolderOperations) {
  folder_ops_ = true;
  RunRounds(kRounds);
}

// Also site pages: created, edited and deleted (listed fully every round),
// and their ACL (the library roots' permissions) changed.
TEST_P(ConvergenceTest, WithSitePages) {
  page_ops_ = true;
  RunRounds(kRounds);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ConvergenceTest, ::testing::Range(1u, 21u));

}  // namespace
}  // namespace tessera::connectors::sharepoint
