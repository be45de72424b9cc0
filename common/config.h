// Flags and the config file.
//
// Every setting is an absl flag (defined next to the code that reads it). A
// config file lets operators keep them in one place:
//
//   tessera serve --config=/etc/tessera/tessera.json --listen=0.0.0.0:7600
//
// The file is one JSON object whose keys are flag names (without "--") and
// whose values are strings, numbers, booleans, or arrays of strings (joined
// with commas, for list flags). Precedence: built-in default < config file <
// command line. An unknown key or a value of the wrong type is an error that
// names the file and the key, so typos never pass silently.
#ifndef TESSERA_COMMON_CONFIG_H_
#define TESSERA_COMMON_CONFIG_H_

#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/file_system.h"

ABSL_DECLARE_FLAG(std::string, config);

namespace tessera {

// Applies the settings in the JSON config `contents` to the registered flags.
// `origin` names the file in error messages. INVALID_ARGUMENT on malformed
// JSON, an unknown key or a bad value; nothing is applied unless all is valid.
[[nodiscard]] absl::Status ApplyConfigJson(absl::string_view contents, absl::string_view origin);

// Reads and applies a config file. NOT_FOUND when it does not exist.
[[nodiscard]] absl::Status ApplyConfigFile(absl::string_view path, FileSystem* fs);

// Returns the value of --config=X / --config X in argv ("" when absent),
// without parsing the rest.
std::string FindConfigArg(int argc, char** argv);

// The whole sequence for a main(): applies --config (if any), then parses the
// command line over it with absl (which prints usage and exits on unknown
// flags). Returns the positional arguments, argv[0] first.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> ParseFlagsAndConfig(int argc, char** argv,
                                                                           absl::string_view usage);

}  // namespace tessera

#endif  // TESSERA_COMMON_CONFIG_H_
