/**
 * The {@code cuda} and {@code cuda-emulated} backends, the ring all-reduce between devices and the NCCL collective,
 * all found through {@link java.util.ServiceLoader}. Exports only {@code org.vgg4j.cuda.api}, the exceptions a caller
 * may catch ({@code CudaException}, {@code CudaOutOfMemoryException}); the backend, the driver layer
 * ({@code Driver}, {@code JCudaDriver}, the emulated device, {@code KernelArgs}) and the NCCL binding are internal.
 *
 * <p>JCuda stays on the class path: it loads its natives from its natives jar with {@code Class.getResourceAsStream},
 * which a named module cannot do across jars. This module reads it with
 * {@code --add-reads org.vgg4j.cuda=ALL-UNNAMED} (set for compiling and testing in the poms).
 */
module org.vgg4j.cuda {
    requires transitive org.vgg4j.core; // CudaBackend is a Backend
    requires org.bytedeco.javacpp;
    requires org.bytedeco.cuda;
    requires org.slf4j;

    exports org.vgg4j.cuda.api;

    provides org.vgg4j.core.backend.BackendProvider with
            org.vgg4j.cuda.CudaBackendProvider,
            org.vgg4j.cuda.EmulatedCudaBackendProvider;
    provides org.vgg4j.core.parallel.AllReduceProvider with org.vgg4j.cuda.RingAllReduceProvider;
    provides org.vgg4j.core.parallel.CollectiveProvider with org.vgg4j.cuda.nccl.NcclCollectiveProvider;
}
