#include "crypto.h"

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include <cstring>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "errors.h"
#include "netlayer/core/assert.h"

namespace netlayer::tls::internal {

// The generator behind one deterministic library context. OpenSSL may call in from any thread
// that uses the context, so draws are serialised (in the simulator there is only one thread).
struct Crypto::Source {
  explicit Source(uint64_t seed) : generator(seed) {}
  void Fill(unsigned char* out, size_t n) {
    std::lock_guard<std::mutex> lock(mu);
    while (n > 0) {
      const uint64_t word = generator.Next();
      const size_t take = n < sizeof word ? n : sizeof word;
      for (size_t i = 0; i < take; ++i) out[i] = static_cast<unsigned char>(word >> (8 * i));
      out += take;
      n -= take;
    }
  }
  std::mutex mu;
  Xoshiro256 generator;  // guarded by mu
};

namespace {

constexpr char kProviderName[] = "netlayer-deterministic";
constexpr char kRandName[] = "NETLAYER-DETERMINISTIC";
constexpr char kPropertyQuery[] = "provider=netlayer-deterministic";

// Which Source a library context draws from: registered before the provider is loaded into the
// context, looked up by the provider's init (never iterated).
std::mutex& RegistryMutex() {
  static std::mutex mu;
  return mu;
}
std::map<const OSSL_LIB_CTX*, Crypto::Source*>& Registry() {
  static auto* registry = new std::map<const OSSL_LIB_CTX*, Crypto::Source*>();
  return *registry;
}

// ---- The EVP_RAND implementation ----

struct RandCtx {
  Crypto::Source* source;
  int state = EVP_RAND_STATE_UNINITIALISED;
};

void* RandNew(void* provctx, void* /*parent*/, const OSSL_DISPATCH* /*parent_calls*/) {
  return new RandCtx{static_cast<Crypto::Source*>(provctx)};
}
void RandFree(void* vctx) { delete static_cast<RandCtx*>(vctx); }
int RandInstantiate(void* vctx, unsigned int, int, const unsigned char*, size_t,
                    const OSSL_PARAM[]) {
  static_cast<RandCtx*>(vctx)->state = EVP_RAND_STATE_READY;
  return 1;
}
int RandUninstantiate(void* vctx) {
  static_cast<RandCtx*>(vctx)->state = EVP_RAND_STATE_UNINITIALISED;
  return 1;
}
int RandGenerate(void* vctx, unsigned char* out, size_t outlen, unsigned int, int,
                 const unsigned char*, size_t) {
  static_cast<RandCtx*>(vctx)->source->Fill(out, outlen);
  return 1;
}
int RandReseed(void*, int, const unsigned char*, size_t, const unsigned char*, size_t) {
  return 1;
}
size_t RandGetSeed(void* vctx, unsigned char** buffer, int, size_t min_len, size_t, int,
                   const unsigned char*, size_t) {
  auto* p = static_cast<unsigned char*>(OPENSSL_secure_malloc(min_len));
  if (p == nullptr) return 0;
  static_cast<RandCtx*>(vctx)->source->Fill(p, min_len);
  *buffer = p;
  return min_len;
}
void RandClearSeed(void*, unsigned char* buffer, size_t len) {
  OPENSSL_secure_clear_free(buffer, len);
}
int RandEnableLocking(void*) { return 1; }  // Source serialises draws itself
int RandLock(void*) { return 1; }
void RandUnlock(void*) {}
const OSSL_PARAM* RandGettableCtxParams(void*, void*) {
  static const OSSL_PARAM params[] = {
      OSSL_PARAM_int(OSSL_RAND_PARAM_STATE, nullptr),
      OSSL_PARAM_uint(OSSL_RAND_PARAM_STRENGTH, nullptr),
      OSSL_PARAM_size_t(OSSL_RAND_PARAM_MAX_REQUEST, nullptr), OSSL_PARAM_END};
  return params;
}
int RandGetCtxParams(void* vctx, OSSL_PARAM params[]) {
  OSSL_PARAM* p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STATE);
  if (p != nullptr && !OSSL_PARAM_set_int(p, static_cast<RandCtx*>(vctx)->state)) return 0;
  p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STRENGTH);
  if (p != nullptr && !OSSL_PARAM_set_uint(p, 256)) return 0;
  p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_MAX_REQUEST);
  if (p != nullptr && !OSSL_PARAM_set_size_t(p, size_t{1} << 16)) return 0;
  return 1;
}
int RandVerifyZeroization(void*) { return 1; }

template <typename F>
void (*Fn(F* f))() {
  return reinterpret_cast<void (*)()>(f);
}

const OSSL_DISPATCH kRandFunctions[] = {
    {OSSL_FUNC_RAND_NEWCTX, Fn(&RandNew)},
    {OSSL_FUNC_RAND_FREECTX, Fn(&RandFree)},
    {OSSL_FUNC_RAND_INSTANTIATE, Fn(&RandInstantiate)},
    {OSSL_FUNC_RAND_UNINSTANTIATE, Fn(&RandUninstantiate)},
    {OSSL_FUNC_RAND_GENERATE, Fn(&RandGenerate)},
    {OSSL_FUNC_RAND_RESEED, Fn(&RandReseed)},
    {OSSL_FUNC_RAND_GET_SEED, Fn(&RandGetSeed)},
    {OSSL_FUNC_RAND_CLEAR_SEED, Fn(&RandClearSeed)},
    {OSSL_FUNC_RAND_ENABLE_LOCKING, Fn(&RandEnableLocking)},
    {OSSL_FUNC_RAND_LOCK, Fn(&RandLock)},
    {OSSL_FUNC_RAND_UNLOCK, Fn(&RandUnlock)},
    {OSSL_FUNC_RAND_GETTABLE_CTX_PARAMS, Fn(&RandGettableCtxParams)},
    {OSSL_FUNC_RAND_GET_CTX_PARAMS, Fn(&RandGetCtxParams)},
    {OSSL_FUNC_RAND_VERIFY_ZEROIZATION, Fn(&RandVerifyZeroization)},
    {0, nullptr}};

const OSSL_ALGORITHM kRandAlgorithms[] = {
    {kRandName, "provider=netlayer-deterministic", kRandFunctions,
     "netlayer: randomness drawn from an injected seeded generator (simulation only)"},
    {nullptr, nullptr, nullptr, nullptr}};

// ---- The provider ----

const OSSL_ALGORITHM* ProviderQuery(void*, int operation_id, int* no_cache) {
  *no_cache = 0;
  return operation_id == OSSL_OP_RAND ? kRandAlgorithms : nullptr;
}
void ProviderTeardown(void*) {}

const OSSL_DISPATCH kProviderFunctions[] = {
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, Fn(&ProviderQuery)},
    {OSSL_FUNC_PROVIDER_TEARDOWN, Fn(&ProviderTeardown)},
    {0, nullptr}};

int ProviderInit(const OSSL_CORE_HANDLE* handle, const OSSL_DISPATCH* in,
                 const OSSL_DISPATCH** out, void** provctx) {
  OSSL_FUNC_core_get_libctx_fn* get_libctx = nullptr;
  for (; in->function_id != 0; ++in) {
    if (in->function_id == OSSL_FUNC_CORE_GET_LIBCTX) get_libctx = OSSL_FUNC_core_get_libctx(in);
  }
  if (get_libctx == nullptr) return 0;
  const auto* libctx = reinterpret_cast<const OSSL_LIB_CTX*>(get_libctx(handle));
  std::lock_guard<std::mutex> lock(RegistryMutex());
  auto it = Registry().find(libctx);
  if (it == Registry().end()) return 0;
  *provctx = it->second;
  *out = kProviderFunctions;
  return 1;
}

}  // namespace

std::shared_ptr<Crypto> Crypto::Default() {
  static const std::shared_ptr<Crypto> crypto(new Crypto());
  return crypto;
}

absl::StatusOr<std::shared_ptr<Crypto>> Crypto::Deterministic(uint64_t seed) {
  std::shared_ptr<Crypto> c(new Crypto());
  c->source_ = std::make_unique<Source>(seed);
  c->libctx_ = OSSL_LIB_CTX_new();
  if (c->libctx_ == nullptr) return absl::InternalError("OSSL_LIB_CTX_new failed");
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    Registry()[c->libctx_] = c->source_.get();
  }
  auto fail = [&](const char* what) {
    return absl::InternalError(absl::StrCat("deterministic OpenSSL context: ", what, ": ",
                                            DrainOpenSslErrors()));
  };
  // The DRBG and seed source types must be set before the context draws its first byte.
  if (RAND_set_DRBG_type(c->libctx_, kRandName, kPropertyQuery, nullptr, nullptr) != 1) {
    return fail("RAND_set_DRBG_type");
  }
  if (RAND_set_seed_source_type(c->libctx_, kRandName, kPropertyQuery) != 1) {
    return fail("RAND_set_seed_source_type");
  }
  if (OSSL_PROVIDER_add_builtin(c->libctx_, kProviderName, &ProviderInit) != 1) {
    return fail("OSSL_PROVIDER_add_builtin");
  }
  c->rand_provider_ = OSSL_PROVIDER_load(c->libctx_, kProviderName);
  if (c->rand_provider_ == nullptr) return fail("loading the deterministic provider");
  c->default_provider_ = OSSL_PROVIDER_load(c->libctx_, "default");
  if (c->default_provider_ == nullptr) return fail("loading the default provider");
  return c;
}

absl::StatusOr<std::shared_ptr<Crypto>> Crypto::For(Generator* random) {
  if (random == nullptr) return Default();
  return Deterministic(random->Next());
}

Crypto::~Crypto() {
  if (libctx_ == nullptr) return;
  if (default_provider_ != nullptr) OSSL_PROVIDER_unload(default_provider_);
  if (rand_provider_ != nullptr) OSSL_PROVIDER_unload(rand_provider_);
  OSSL_LIB_CTX_free(libctx_);
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Registry().erase(libctx_);
}

}  // namespace netlayer::tls::internal
