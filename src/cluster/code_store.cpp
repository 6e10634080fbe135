#include "cluster/code_store.hpp"

#include "backend/docker/rootfs.hpp"

namespace tinyfaas::cluster {

std::string codeHash(std::string_view zip) { return docker::sha256Hex(zip); }

Result<std::string> storeCode(KvTransport& kv, std::string_view zip) {
  const std::string hash = codeHash(zip);
  auto present = kv.get(Bucket::code, hash);
  if (!present) return Failed{present.error()};
  if (*present) return Result<std::string>(boost::system::in_place_value, hash);
  std::size_t chunks = 0;
  for (std::size_t at = 0; at < zip.size(); at += kCodeChunkBytes, ++chunks) {
    auto put = kv.put(Bucket::code, hash + "." + std::to_string(chunks), std::string(zip.substr(at, kCodeChunkBytes)));
    if (!put) return Failed{put.error()};
  }
  auto done = kv.put(Bucket::code, hash, std::to_string(chunks));
  if (!done) return Failed{done.error()};
  return Result<std::string>(boost::system::in_place_value, hash);
}

Result<std::string> loadCode(KvTransport& kv, const std::string& hash) {
  auto head = kv.get(Bucket::code, hash);
  if (!head) return Failed{head.error()};
  if (!*head) return Failed{"code " + hash + " is not in the cluster"};
  std::size_t chunks = 0;
  try {
    chunks = std::stoul((*head)->value);
  } catch (const std::exception&) {
    return Failed{"code " + hash + ": bad chunk count"};
  }
  std::string zip;
  for (std::size_t i = 0; i < chunks; ++i) {
    auto chunk = kv.get(Bucket::code, hash + "." + std::to_string(i));
    if (!chunk) return Failed{chunk.error()};
    if (!*chunk) return Failed{"code " + hash + ": chunk " + std::to_string(i) + " is missing"};
    zip += (*chunk)->value;
  }
  if (codeHash(zip) != hash) return Failed{"code " + hash + " does not match its hash"};
  return Result<std::string>(boost::system::in_place_value, std::move(zip));
}

Result<void> dropCode(KvTransport& kv, const std::string& hash) {
  auto head = kv.get(Bucket::code, hash);
  if (!head) return Failed{head.error()};
  if (!*head) return {};
  std::size_t chunks = 0;
  try {
    chunks = std::stoul((*head)->value);
  } catch (const std::exception&) {
  }
  // The count first: a reader then never finds a zip with chunks missing.
  if (auto erased = kv.erase(Bucket::code, hash); !erased) return erased;
  for (std::size_t i = 0; i < chunks; ++i) {
    if (auto erased = kv.erase(Bucket::code, hash + "." + std::to_string(i)); !erased) return erased;
  }
  return {};
}

}  // namespace tinyfaas::cluster
