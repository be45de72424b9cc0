// fake_drive: serves a small sample company's Google Drive (FakeDriveServer)
// on 127.0.0.1 for demos, printing the base URL on stdout, until SIGINT or
// SIGTERM. Any bearer token is accepted.
//
//   fake_drive [--empty]
//
// --empty: start with no files (tests build their own company). Commands
// read on stdin, one JSON object per line (see fake_drive_admin.h), mutate
// the drive; each is answered with one JSON line on stdout. End of stdin
// leaves the server running.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "connectors/drive/fake_drive_admin.h"
#include "connectors/drive/fake_drive_server.h"
#include "connectors/testing/fake_server_main.h"

namespace {

using tessera::connectors::drive::FakeDriveServer;
using tessera::connectors::drive::FakeFile;
using tessera::connectors::drive::FakePermission;
using tessera::connectors::drive::FakeSharedDrive;
using tessera::connectors::drive::kMimeGoogleDoc;
using tessera::connectors::drive::kMimeGoogleSheet;

absl::Status Seed(FakeDriveServer &s) {
  s.AddSharedDrive(FakeSharedDrive{
      "0AFinance", "Finance", {{.type = "group", .email = "finance@acme.example"}}});
  auto r = s.CreateFile({.id = "doc-handbook",
                         .name = "Employee handbook",
                         .mime_type = std::string(kMimeGoogleDoc),
                         .content = "Vacation: 25 days a year. Remote work: up to 3 days a week.",
                         .permissions = {{.type = "domain", .domain = "acme.example"}}});
  if (!r.ok()) return r.status();
  r = s.CreateFile({.id = "sheet-budget",
                    .name = "2026 budget",
                    .mime_type = std::string(kMimeGoogleSheet),
                    .drive_id = "0AFinance",
                    .content = "team,budget\nengineering,1200000\nsales,800000\n"});
  if (!r.ok()) return r.status();
  r = s.CreateFile({.id = "txt-salaries",
                    .name = "salaries.txt",
                    .mime_type = "text/plain",
                    .drive_id = "0AFinance",
                    .content = "Confidential: salary bands are reviewed every March."});
  if (!r.ok()) return r.status();
  r = s.CreateFile({.id = "doc-link-only",
                    .name = "Offsite ideas",
                    .mime_type = std::string(kMimeGoogleDoc),
                    .content = "Offsite in Lisbon, link-only sharing.",
                    .permissions = {{.type = "anyone", .allow_file_discovery = false}}});
  return r.status();
}

}  // namespace

int main(int argc, char **argv) {
  bool empty = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--empty") == 0) {
      empty = true;
    } else {
      std::fprintf(stderr, "fake_drive: unknown argument %s (usage: fake_drive [--empty])\n",
                   argv[i]);
      return 2;
    }
  }
  return tessera::connectors::testing::RunFakeServerMain<FakeDriveServer>(
      "fake_drive",
      [] {
        FakeDriveServer::Options options;
        options.user_email = "admin@acme.example";
        options.user_groups = {"finance@acme.example"};
        return FakeDriveServer::Start(options);
      },
      [empty](FakeDriveServer &server) { return empty ? absl::OkStatus() : Seed(server); },
      [](FakeDriveServer &drive) {
        std::thread([&drive] {
          std::string line;
          while (std::getline(std::cin, line)) {
            if (line.empty()) continue;
            std::string answer = tessera::connectors::drive::ExecuteFakeDriveCommand(drive, line);
            std::fprintf(stdout, "%s\n", answer.c_str());
            std::fflush(stdout);
          }
        }).detach();
      });
}
