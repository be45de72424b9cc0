// fake_gmail: serves the sample company's mailboxes (FakeGmailServer) on 127.0.0.1 for demos,
// printing the base URL on stdout, until SIGINT or SIGTERM. Any bearer token is accepted.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "connectors/gmail/fake_gmail_server.h"
#include "connectors/testing/fake_server_main.h"

namespace {

using tessera::connectors::gmail::FakeGmailServer;
using tessera::connectors::gmail::FakeMessage;

std::string Mail(const std::string& from, const std::string& to, const std::string& subject,
                 const std::string& body) {
  return absl::StrCat("From: ", from, "\r\nTo: ", to, "\r\nSubject: ", subject,
                      "\r\nDate: Mon, 2 Nov 2026 09:00:00 +0000\r\nMessage-ID: <", subject.size(), ".",
                      from, ">\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", body,
                      "\r\n");
}

absl::Status Seed(FakeGmailServer& s) {
  struct Item {
    const char* mailbox;
    std::string raw;
  };
  const Item items[] = {
      {"ann@acme.example",
       Mail("cfo@acme.example", "ann@acme.example", "Q3 budget: final numbers",
            "Ann, the Q3 budget is final: 4.2 million euros. Travel is cut by 10 percent; please tell the "
            "budget owners before Friday.")},
      {"ann@acme.example",
       Mail("hr@acme.example", "ann@acme.example", "Your bonus for 2026",
            "Dear Ann, your 2026 bonus is 12 percent of your salary, paid in March.")},
      {"bob@acme.example",
       Mail("cto@acme.example", "bob@acme.example", "On-call rota for December",
            "Bob, you are on call from 14 to 20 December. The escalation path is in the on-call handbook.")},
      {"bob@acme.example",
       Mail("finance@acme.example", "engineering@acme.example", "Engineering budget request",
            "The engineering budget request of 1.5 million for Q3 is still pending approval by finance.")},
  };
  for (const Item& i : items) {
    FakeMessage m;
    m.raw = i.raw;
    auto r = s.AddMessage(i.mailbox, m);
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

}  // namespace

int main() {
  return tessera::connectors::testing::RunFakeServerMain<FakeGmailServer>(
      "fake_gmail",
      [] {
        FakeGmailServer::Options options;
        options.mailboxes = {"ann@acme.example", "bob@acme.example"};
        return FakeGmailServer::Start(options);
      },
      Seed);
}
