// The client side of the `tessera` command line: commands that call a
// running server over gRPC with an API key (search, collections, ingest).
// Each returns a process exit code (0 ok, 1 failure, 2 usage error) and
// prints results to `out`, diagnostics and progress to `err`.
#ifndef TESSERA_SERVICES_GATEWAY_CLIENT_COMMANDS_H_
#define TESSERA_SERVICES_GATEWAY_CLIENT_COMMANDS_H_

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/channel.h"

namespace tessera {

struct ClientOptions {
  std::string server = "127.0.0.1:7600";
  std::string key;     // the bearer key
  std::string tls_ca;  // PEM roots for a TLS server; empty = plaintext
};

// A channel to the server (TLS when tls_ca is set), for client commands of any service.
absl::StatusOr<std::shared_ptr<grpc::Channel>> ClientChannel(const ClientOptions& client);

// A call context carrying the key, with a deadline `timeout` from now (none when infinite).
std::unique_ptr<grpc::ClientContext> ClientContextFor(const ClientOptions& client, absl::Duration timeout);

// Prints a failed call for people ("tessera: NOT_FOUND: ..." plus a hint when the server is
// unreachable) and returns the exit code: 2 for INVALID_ARGUMENT, else 1.
int ReportClientError(const absl::Status& status, FILE* err);

// Reads the key from `key_file` if given, else from $TESSERA_KEY.
// INVALID_ARGUMENT when neither holds one.
absl::StatusOr<std::string> ResolveKey(const std::string& key_file);

struct SearchCommandOptions {
  std::string query;
  std::vector<std::string> collections;  // empty: all
  int top_k = 10;
  std::string as_user;                   // search as this principal (admin keys only)
  std::vector<std::string> as_groups;
  std::string fusion = "rrf";            // rrf or weighted
  bool json = false;                     // print the raw response as JSON
};
int SearchCommand(const ClientOptions& client, const SearchCommandOptions& options, FILE* out,
                  FILE* err);

struct CollectionCommandOptions {
  std::string action;  // create, list, get, delete
  std::string name;
  std::string index;   // FAISS factory for create
  std::string model;   // embedding model for create ("" = built-in lexical)
  int dimensions = 0;
};
int CollectionCommand(const ClientOptions& client, const CollectionCommandOptions& options,
                      FILE* out, FILE* err);

struct IngestCommandOptions {
  std::vector<std::string> paths;  // files and folders (walked recursively)
  std::string collection;
  std::string source = "files";
  std::vector<std::string> acl = {"anyone"};
  size_t batch_bytes = 8u << 20;
  int batch_documents = 32;
  bool progress = true;
};
int IngestCommand(const ClientOptions& client, const IngestCommandOptions& options, FILE* out,
                  FILE* err);

}  // namespace tessera

#endif  // TESSERA_SERVICES_GATEWAY_CLIENT_COMMANDS_H_
