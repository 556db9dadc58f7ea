/**
 * The {@code cuda} and {@code cuda-emulated} backends, the ring all-reduce between devices and the NCCL collective,
 * all found through {@link java.util.ServiceLoader}. Exports {@code org.vgg4j.cuda} for its exceptions
 * ({@code CudaException}, {@code CudaOutOfMemoryException}); the NCCL binding and the benchmark tool are not
 * exported.
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

    exports org.vgg4j.cuda;

    provides org.vgg4j.core.backend.BackendProvider with
            org.vgg4j.cuda.CudaBackendProvider,
            org.vgg4j.cuda.EmulatedCudaBackendProvider;
    provides org.vgg4j.core.parallel.AllReduceProvider with org.vgg4j.cuda.RingAllReduceProvider;
    provides org.vgg4j.core.parallel.CollectiveProvider with org.vgg4j.cuda.nccl.NcclCollectiveProvider;
}
