// Two measuring aids for bench/memory. releaseBuffers() sets (redundantly: Node
// already sets it on every TLS connection, TLSWrap::InitSSL; see README.md)
// SSL_MODE_RELEASE_BUFFERS on the OpenSSL SSL_CTX behind a Node
// tls.SecureContext, so that every TLS connection made from that context frees
// its record-layer read and write buffers (about 17 KiB each) whenever they are
// empty, i.e. while the connection is idle. Node has no option for this.
//
// Bench-only and tied to Node's internals: `secureContext.context` is a native
// node::crypto::SecureContext (a BaseObject). Its C++ object is found through
// the wrapper's internal field (BaseObject::kSlot), and its SSL_CTX pointer
// (the member right after the BaseObject part) is found by looking at the first
// words of the object for one whose SSL_CTX method is one of OpenSSL's TLS
// methods; the candidates are all pointers to live objects (vtable, handle,
// realm, ...), so reading 16 bytes at each is safe (in practice: nothing
// guarantees it across Node versions). Anything unexpected: an exception, and
// nothing is changed. OpenSSL's symbols come from the node binary itself,
// which exports them (nm -D $(which node) | grep SSL_CTX_ctrl).
#include <malloc.h>
#include <node.h>
#include <openssl/ssl.h>

namespace {

using v8::FunctionCallbackInfo;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::String;
using v8::Value;

void Throw(Isolate* isolate, const char* message) {
  isolate->ThrowException(v8::Exception::Error(String::NewFromUtf8(isolate, message).ToLocalChecked()));
}

bool IsTlsMethod(const SSL_METHOD* m) {
  return m != nullptr && (m == TLS_method() || m == TLS_server_method() || m == TLS_client_method());
}

// releaseBuffers(secureContext.context) -> the SSL_CTX mode after the change.
void ReleaseBuffers(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() < 1 || !args[0]->IsObject()) return Throw(isolate, "expected secureContext.context");
  Local<Object> wrapper = args[0].As<Object>();
  // Node 20: internal field 0 is the embedder type tag, field 1 the C++ object.
  if (wrapper->InternalFieldCount() < 2) return Throw(isolate, "not a native SecureContext");
  void** self = static_cast<void**>(wrapper->GetAlignedPointerFromInternalField(1));
  if (self == nullptr) return Throw(isolate, "SecureContext has no native object");
  SSL_CTX* ctx = nullptr;
  for (int i = 1; i < 8 && ctx == nullptr; i++) {
    void* candidate = self[i];
    if (candidate == nullptr || (reinterpret_cast<uintptr_t>(candidate) & 7) != 0) continue;
    // struct ssl_ctx_st (OpenSSL 3.0) begins with the library context and the method.
    const SSL_METHOD* method = static_cast<const SSL_METHOD* const*>(candidate)[1];
    if (IsTlsMethod(method) && IsTlsMethod(SSL_CTX_get_ssl_method(static_cast<SSL_CTX*>(candidate)))) ctx = static_cast<SSL_CTX*>(candidate);
  }
  if (ctx == nullptr) return Throw(isolate, "no SSL_CTX found in the SecureContext (another Node version?)");
  long mode = SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  args.GetReturnValue().Set(static_cast<double>(mode));
}

// mallocTrim(): glibc's malloc_trim(0), which gives the pages of free chunks back to the
// system: what RSS drops by is memory malloc held free, not memory in use (a measuring aid).
void MallocTrim(const FunctionCallbackInfo<Value>& args) {
  args.GetReturnValue().Set(malloc_trim(0));
}

void Init(Local<Object> exports) {
  NODE_SET_METHOD(exports, "releaseBuffers", ReleaseBuffers);
  NODE_SET_METHOD(exports, "mallocTrim", MallocTrim);
}

}  // namespace

NODE_MODULE(NODE_GYP_MODULE_NAME, Init)
