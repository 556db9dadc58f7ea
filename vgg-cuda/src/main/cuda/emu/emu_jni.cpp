// emu_jni.cpp -- JNI entry points of the emulated device (libvggcudaemu.so): device memory, copies, kernel lookup
// and launch, for org.vgg4j.cuda.EmulatorNative.
//
// Is: the emulator's "driver API". Device memory is host memory from malloc, surrounded by red zones of 0xFF bytes
// (a float NaN pattern): a kernel that reads a few elements past a buffer gets NaN instead of a crash or silent
// garbage, and one that writes there is caught by checkRedZones() after the launch. Is not: a full memory checker
// (a far-out-of-bounds access is still undefined behaviour, as on a GPU).
#include <jni.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "cuda_emu.h"

namespace {

constexpr size_t kRedZone = 256;  // bytes on each side of every allocation
constexpr unsigned char kPoison = 0xFF;

std::mutex g_mu;
std::map<uintptr_t, size_t> g_allocs;  // user address -> user bytes

void throwJava(JNIEnv* env, const char* cls, const std::string& msg) {
    jclass c = env->FindClass(cls);
    if (c != nullptr) env->ThrowNew(c, msg.c_str());
}

bool poisoned(const unsigned char* p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] != kPoison) return false;
    }
    return true;
}

}  // namespace

extern "C" {

JNIEXPORT jlong JNICALL Java_org_vgg4j_cuda_EmulatorNative_malloc(JNIEnv*, jclass, jlong bytes) {
    size_t n = (size_t)bytes;
    unsigned char* base = static_cast<unsigned char*>(std::malloc(n + 2 * kRedZone));
    if (base == nullptr) return 0;
    std::memset(base, kPoison, kRedZone);
    std::memset(base + kRedZone + n, kPoison, kRedZone);
    uintptr_t user = (uintptr_t)(base + kRedZone);
    std::lock_guard<std::mutex> g(g_mu);
    g_allocs[user] = n;
    return (jlong)user;
}

JNIEXPORT void JNICALL Java_org_vgg4j_cuda_EmulatorNative_free(JNIEnv* env, jclass, jlong ptr) {
    std::lock_guard<std::mutex> g(g_mu);
    auto it = g_allocs.find((uintptr_t)ptr);
    if (it == g_allocs.end()) {
        throwJava(env, "java/lang/IllegalArgumentException",
                  "free of 0x" + std::to_string(ptr) + ", which is not an emulated device allocation");
        return;
    }
    g_allocs.erase(it);
    std::free(reinterpret_cast<unsigned char*>(ptr) - kRedZone);
}

// Null when every red zone is intact, else which allocation was written out of bounds (first found).
JNIEXPORT jstring JNICALL Java_org_vgg4j_cuda_EmulatorNative_checkRedZones(JNIEnv* env, jclass) {
    std::lock_guard<std::mutex> g(g_mu);
    for (auto& a : g_allocs) {
        const unsigned char* user = reinterpret_cast<const unsigned char*>(a.first);
        bool before = poisoned(user - kRedZone, kRedZone);
        bool after = poisoned(user + a.second, kRedZone);
        if (!before || !after) {
            std::string m = "out-of-bounds write " + std::string(before ? "after the end" : "before the start") +
                            " of a " + std::to_string(a.second) + "-byte device allocation";
            // repair, so one bug is reported once
            std::memset(const_cast<unsigned char*>(user) - kRedZone, kPoison, kRedZone);
            std::memset(const_cast<unsigned char*>(user) + a.second, kPoison, kRedZone);
            return env->NewStringUTF(m.c_str());
        }
    }
    return nullptr;
}

JNIEXPORT void JNICALL Java_org_vgg4j_cuda_EmulatorNative_copyInFloat(JNIEnv* env, jclass, jfloatArray src, jint off,
                                                                        jlong dst, jint n) {
    env->GetFloatArrayRegion(src, off, n, reinterpret_cast<jfloat*>(dst));
}

JNIEXPORT void JNICALL Java_org_vgg4j_cuda_EmulatorNative_copyInInt(JNIEnv* env, jclass, jintArray src, jint off,
                                                                      jlong dst, jint n) {
    env->GetIntArrayRegion(src, off, n, reinterpret_cast<jint*>(dst));
}

JNIEXPORT void JNICALL Java_org_vgg4j_cuda_EmulatorNative_copyOutFloat(JNIEnv* env, jclass, jlong src, jfloatArray dst,
                                                                         jint off, jint n) {
    env->SetFloatArrayRegion(dst, off, n, reinterpret_cast<const jfloat*>(src));
}

JNIEXPORT void JNICALL Java_org_vgg4j_cuda_EmulatorNative_copyDeviceToDevice(JNIEnv*, jclass, jlong dst, jlong src,
                                                                               jlong bytes) {
    std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), (size_t)bytes);
}

JNIEXPORT jlong JNICALL Java_org_vgg4j_cuda_EmulatorNative_kernel(JNIEnv* env, jclass, jstring name) {
    const char* n = env->GetStringUTFChars(name, nullptr);
    const emu::Kernel* k = emu::find_kernel(n);
    env->ReleaseStringUTFChars(name, n);
    return (jlong)(uintptr_t)k;
}

// The kernel's parameter widths, one letter each (emu::param_code): what every launch's arguments must match.
JNIEXPORT jstring JNICALL Java_org_vgg4j_cuda_EmulatorNative_signature(JNIEnv* env, jclass, jlong kernel) {
    return env->NewStringUTF(reinterpret_cast<const emu::Kernel*>(kernel)->signature);
}

// slots: one 8-byte slot per kernel argument, its value in the low bytes (little-endian), as cuLaunchKernel's
// kernelParams would point at. Returns null or the launch's error.
JNIEXPORT jstring JNICALL Java_org_vgg4j_cuda_EmulatorNative_launch(JNIEnv* env, jclass, jlong kernel, jint gx, jint gy,
                                                                      jint gz, jint bx, jint by, jint bz,
                                                                      jlongArray slots) {
    jsize n = env->GetArrayLength(slots);
    jlong values[32];
    void* args[32];
    if (n > 32) return env->NewStringUTF("more than 32 kernel arguments");
    env->GetLongArrayRegion(slots, 0, n, values);
    for (jsize i = 0; i < n; i++) args[i] = &values[i];
    const char* err = emu::launch(reinterpret_cast<const emu::Kernel*>(kernel), dim3(gx, gy, gz), dim3(bx, by, bz), args);
    return err == nullptr ? nullptr : env->NewStringUTF(err);
}

}  // extern "C"
