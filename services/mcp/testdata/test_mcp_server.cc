// Tessera's MCP server over a fake retrieval backend, for interop tests:
//   test_mcp_server stdio            (key from TESSERA_KEY)
//   test_mcp_server http PORT_FILE [--anonymous] [--sse]
// In http mode keys tsk_* are valid; --anonymous lets requests without
// Authorization through as tsk_ann (the conformance suite cannot send one).
// The port is written to PORT_FILE once listening; it then serves until
// stdin closes or it is killed.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "services/mcp/http_server.h"
#include "services/mcp/stdio_server.h"
#include "services/mcp/testdata/fake_retrieval.h"

int main(int argc, char** argv) {
  using namespace tessera::mcp;
  testing::FakeRetrieval retrieval;
  McpServerOptions options;
  options.retrieval_channel = [&retrieval] { return retrieval.channel(); };
  if (argc >= 2 && std::strcmp(argv[1], "stdio") == 0) {
    McpServer server(options);
    McpCallContext context;
    const char* key = std::getenv("TESSERA_KEY");
    context.bearer_key = key == nullptr ? "" : key;
    absl::Status s = RunMcpStdio(std::cin, std::cout, server, context);
    if (!s.ok()) std::cerr << s << "\n";
    return s.ok() ? 0 : 1;
  }
  if (argc >= 3 && std::strcmp(argv[1], "http") == 0) {
    McpHttpServerOptions http;
    http.server = options;
    http.validate_key = [](const std::string& key) -> absl::StatusOr<McpKeyInfo> {
      if (key.rfind("tsk_", 0) != 0) return absl::UnauthenticatedError("bad key");
      return McpKeyInfo{key.substr(0, 8)};
    };
    for (int i = 3; i < argc; ++i) {
      if (std::strcmp(argv[i], "--anonymous") == 0) http.unauthenticated_key_for_tests = "tsk_ann";
      if (std::strcmp(argv[i], "--sse") == 0) http.sse_responses = true;
    }
    auto server = StartMcpHttpServer(std::move(http));
    if (!server.ok()) {
      std::cerr << server.status() << "\n";
      return 1;
    }
    {
      std::ofstream(std::string(argv[2]) + ".tmp") << (*server)->port() << "\n";
    }
    std::rename((std::string(argv[2]) + ".tmp").c_str(), argv[2]);
    char c;
    while (::read(0, &c, 1) > 0) {
    }
    pause();  // stdin closed (or /dev/null): serve until killed
    return 0;
  }
  std::cerr << "usage: test_mcp_server stdio | http PORT_FILE [--anonymous] [--sse]\n";
  return 2;
}
