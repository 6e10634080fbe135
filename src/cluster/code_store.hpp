#pragma once
// Function code (zips) in the "code" bucket, by SHA-256: a KV value is
// bounded by the NATS max_payload (1 MiB by default), so a zip is stored
// as chunks "HASH.0", "HASH.1", ... and "HASH" holds the chunk count,
// written last so that a reader never sees a partial zip.

#include <string>
#include <string_view>

#include "cluster/cluster_transport.hpp"

namespace tinyfaas::cluster {

inline constexpr std::size_t kCodeChunkBytes = 512 * 1024;

std::string codeHash(std::string_view zip);
// Stores the zip unless it is there already; returns its hash.
Result<std::string> storeCode(KvTransport& kv, std::string_view zip);
// The zip of that hash, checked against it.
Result<std::string> loadCode(KvTransport& kv, const std::string& hash);
Result<void> dropCode(KvTransport& kv, const std::string& hash);

}  // namespace tinyfaas::cluster
