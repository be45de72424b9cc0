// fake_graph: serves the sample company's SharePoint (FakeGraphServer) on 127.0.0.1 for demos: a
// Finance site whose library only the finance group may read, and an intranet site shared with the
// whole organisation. Prints the Graph base URL on stdout and serves until SIGINT or SIGTERM. Any
// bearer token is accepted.
#include <cstdio>

#include "connectors/sharepoint/fake_graph_server.h"
#include "connectors/testing/fake_server_main.h"

namespace {

using tessera::connectors::sharepoint::FakeDriveItem;
using tessera::connectors::sharepoint::FakeGraphPermission;
using tessera::connectors::sharepoint::FakeGraphServer;
using tessera::connectors::sharepoint::FakeIdentity;
using tessera::connectors::sharepoint::FakeLibrary;
using tessera::connectors::sharepoint::FakeSite;

absl::Status Seed(FakeGraphServer& s) {
  s.AddSite({"acme.sharepoint.com,1111,aaaa", "finance", "Finance", "https://acme.sharepoint.com/sites/finance"});
  s.AddSite({"acme.sharepoint.com,2222,bbbb", "intranet", "Intranet", "https://acme.sharepoint.com/sites/intranet"});
  if (auto st = s.AddLibrary({"b!finance-docs", "acme.sharepoint.com,1111,aaaa", "Documents"}); !st.ok()) return st;
  if (auto st = s.AddLibrary({"b!intranet-docs", "acme.sharepoint.com,2222,bbbb", "Documents"}); !st.ok()) return st;
  FakeGraphPermission finance;
  finance.granted_to = FakeIdentity{"group", "finance@acme.example", "Finance"};
  FakeDriveItem forecast;
  forecast.name = "Q3 forecast.txt";
  forecast.content =
      "Q3 forecast: revenue 12.5 million euros, costs 9.1 million; the Q3 budget of 4.2 million holds. "
      "Prepared by finance, do not forward.";
  forecast.permissions = {finance};
  if (auto r = s.CreateItem("b!finance-docs", forecast); !r.ok()) return r.status();
  FakeGraphPermission everyone;
  everyone.link_scope = "organization";
  FakeDriveItem moves;
  moves.name = "Office moves.txt";
  moves.content = "Office moves: engineering moves to the third floor in January; the Q3 budget covers the move.";
  moves.permissions = {everyone};
  if (auto r = s.CreateItem("b!intranet-docs", moves); !r.ok()) return r.status();
  FakeGraphPermission anonymous;
  anonymous.link_scope = "anonymous";
  FakeDriveItem party;
  party.name = "Party playlist.txt";
  party.content = "Playlist for the summer party, shared by an anonymous link: not public for search.";
  party.permissions = {anonymous};
  return s.CreateItem("b!intranet-docs", party).status();
}

}  // namespace

int main() {
  return tessera::connectors::testing::RunFakeServerMain<FakeGraphServer>(
      "fake_graph", [] { return FakeGraphServer::Start({}); }, Seed);
}
