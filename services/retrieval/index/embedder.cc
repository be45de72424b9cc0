#include "services/retrieval/index/embedder.h"

namespace tessera::retrieval {

Embedder::~Embedder() = default;

}  // namespace tessera::retrieval
